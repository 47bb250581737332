"""The worker role: hybrid workers (HYBRID_TRAINING) and cross-silo workers (CLOUD_TRAINING), spec §1.3, §11."""
