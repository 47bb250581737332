"""Device PKI of `client_verify.pki_verify` (spec §10.2): certificate chains, the equipment CRL, RSA-PSS request
signatures and the timestamp window. A library: it knows nothing of Redis, HTTP or rounds (server/pki_check.py does).
"""

from mindfed.pki.chain import ChainError, TrustAnchors, fl_id_of, verify_chain
from mindfed.pki.signature import (
    exchange_keys_data,
    round_data,
    sign_pss,
    start_fl_job_data,
    timestamp_in_window,
    verify_pss,
)

__all__ = ["ChainError", "TrustAnchors", "exchange_keys_data", "fl_id_of", "round_data", "sign_pss",
           "start_fl_job_data", "timestamp_in_window", "verify_chain", "verify_pss"]
