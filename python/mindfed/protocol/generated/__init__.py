"""flatc 2.0.8 output for schema/fl_job.fbs and schema/cipher.fbs (namespace mindspore.fl.schema).

Regenerate with `python -m mindfed.protocol.regenerate` (needs `flatc` on PATH); do not edit by hand.
"""
