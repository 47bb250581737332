"""mindfed: a horizontal federated-learning cluster, wire-compatible with MindSpore Federated devices."""

__version__ = "0.1.0"
