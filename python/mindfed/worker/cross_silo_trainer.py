"""The training loop of one cross-silo worker process: SGD on its own data, one sync window per iteration.

This is what `mindfed worker` runs under CLOUD_TRAINING and what the cross-silo demo starts per worker; a user's own
loop calls the same four `CrossSiloSync` methods (begin_window, proximal_term, after_step, end_window).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from mindfed.data.device_data import DeviceData
from mindfed.worker.cross_silo import CrossSiloSync, TrainingFinished

logger = logging.getLogger(__name__)
MOMENTUM = 0.9


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window: the iteration it joined, its mean loss and training accuracy."""

    iteration: int
    loss: float
    accuracy: float


def _batches(data: DeviceData, batch_size: int, generator: torch.Generator):  # type: ignore[no-untyped-def]
    """Endless shuffled minibatches of `data` (a new permutation every epoch)."""
    x_all, y_all = torch.from_numpy(data.x), torch.from_numpy(data.y)
    while True:
        for index in torch.split(torch.randperm(data.num_samples, generator=generator), batch_size):
            yield x_all[index], y_all[index]


def train_cross_silo(sync: CrossSiloSync, model: nn.Module, data: DeviceData, windows: int, sync_frequency: int,
                     batch_size: int, lr: float, seed: int = 0) -> list[WindowResult]:
    """Train `windows` sync windows of `sync_frequency` SGD steps (momentum 0.9; plain SGD under Scaffold, whose
    correction assumes it) and synchronise after each; stops early when the server's job is finished.

    Returns:
        One WindowResult per window that synchronised.
    """
    momentum = 0.0 if sync.kind == "Scaffold" else MOMENTUM
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    batches = _batches(data, batch_size, torch.Generator().manual_seed(seed))
    results: list[WindowResult] = []
    for _ in range(windows):
        try:
            sync.begin_window(model)
        except TrainingFinished:
            logger.info("%s: the job is finished", sync.fl_id)
            break
        loss_sum, correct, seen = 0.0, 0, 0
        model.train()
        for _step in range(sync_frequency):
            x, y = next(batches)
            logits = model(x)
            loss = loss_fn(logits, y) + sync.proximal_term(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sync.after_step(model, lr)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            seen += len(y)
        try:
            sync.end_window(model, sync_frequency, loss_sum / seen, correct / seen)
        except TrainingFinished:
            logger.info("%s: the job is finished", sync.fl_id)
            break
        results.append(WindowResult(sync.iteration, loss_sum / seen, correct / seen))
        logger.info("%s: iteration %d synced, loss %.4f, train accuracy %.3f", sync.fl_id, sync.iteration,
                    loss_sum / seen, correct / seen)
    return results
