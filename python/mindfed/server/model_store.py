"""The global models of recent iterations, and the byte-identical responses built from them.

MindSpore keeps the last 3 iteration models (spec §13) and caches each success response per (round, iteration,
model iteration, compress type), so a thousand devices asking for the same model cost one FlatBuffers build.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from mindfed.model.weights import ModelWeights
from mindfed.protocol.writer import Allocate
from mindfed.server.shared_body import SharedBody

if TYPE_CHECKING:
    from typing_extensions import Buffer

logger = logging.getLogger(__name__)


class ModelStore:
    """Iteration number → `ModelWeights`, keeping the newest `keep`; plus a response cache keyed by the caller.

    The model of iteration n is the aggregate that iteration n produced; iteration 0 (or the recovery iteration) holds
    the initial model. Not thread-safe: used from the event loop only.
    """

    def __init__(self, keep: int = 3) -> None:
        self._keep = keep
        self._models: dict[int, ModelWeights] = {}
        self._responses: dict[Hashable, SharedBody] = {}

    def put(self, iteration: int, model: ModelWeights) -> None:
        self._models[iteration] = model
        for old in sorted(self._models)[: -self._keep]:
            del self._models[old]
        self._responses.clear()

    def make_room(self) -> None:
        """Drops the oldest model now if the store is full, ahead of the `put` of a model being made: while that one
        is computed (a combine, a decode) the store holds `keep` models, not keep + 1 (at 10M floats, 40 MB less at
        the server's peak). Never the newest: the combine reads it. A getModel for the dropped iteration meanwhile
        gets the newest finished model, as for any iteration no longer kept."""
        if len(self._models) >= self._keep and len(self._models) > 1:
            # the cached answers stay: each holds its own bytes, not the model, and the newest model's are still
            # being sent (rebuilding them now would be one more model-sized memory file at the peak)
            del self._models[min(self._models)]

    def reset(self, iteration: int, model: ModelWeights) -> None:
        """Forget everything and start from `model` as the model of `iteration` (new instance, recovery)."""
        self._models.clear()
        self.put(iteration, model)

    @property
    def latest_iteration(self) -> int:
        return max(self._models)

    @property
    def latest(self) -> ModelWeights:
        return self._models[self.latest_iteration]

    def get(self, iteration: int) -> ModelWeights | None:
        return self._models.get(iteration)

    def response(self, key: Hashable, build: Callable[[Allocate], Buffer]) -> SharedBody:
        """The cached response for `key`, built once (`build(into)`, building into the memfd it is sent from when it
        passes `into` to the response builder); the cache empties whenever a model is stored. A `SharedBody`: the HTTP
        layer sends it to every device from one memfd, and the heap keeps no copy (server/shared_body.py)."""
        cached = self._responses.get(key)
        if cached is None:
            cached = self._responses[key] = SharedBody.built(build)
        return cached
