"""Secure aggregation (PW_ENCRYPT, spec §7.1) shared by the server and the device SDK: round thresholds, the share
plaintext format, the wire constants. The crypto itself is in C++ (`mindfed._core.crypto`)."""
