"""Cloud-side federated-learning workers: hybrid retraining of the servers' aggregate, and cross-silo clients."""
