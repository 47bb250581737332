"""Names of the per-iteration summary counters kept in Redis (`IterationKeys.stats`), summed over servers."""

from __future__ import annotations

from mindfed.cache import keys as K

SUMMARY_ROUNDS = K.SUMMARY_ROUNDS
LOSS_SUM = "lossSum"
DATA_SIZE_SUM = "dataSizeSum"
ACCURACY_SUM = "accuracySum"
EVAL_SIZE_SUM = "evalDataSizeSum"
LEVELS = ("level1", "level2", "level3")
BYTES_RECEIVED = "bytesReceived"
BYTES_SENT = "bytesSent"


def visit(round_name: str, accepted: bool, received: int, sent: int) -> dict[str, float]:
    """Increments for one answered request: the round's total/accept counts and the bytes moved."""
    increments: dict[str, float] = {BYTES_RECEIVED: received, BYTES_SENT: sent}
    if round_name in SUMMARY_ROUNDS:
        increments[K.visits_total(round_name)] = 1
        increments[K.visits_accept(round_name)] = int(accepted)
    return increments
