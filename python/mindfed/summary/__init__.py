"""Per-iteration outputs: the metrics line, failure events, traffic files, unsupervised scores, plots."""
