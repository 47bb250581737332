"""Aggregation of client updates: weighted sums folded in C++ off the event loop."""

from mindfed.aggregation.accumulator import FoldStats, IterationAccumulator

__all__ = ["FoldStats", "IterationAccumulator"]
