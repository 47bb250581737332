"""Numeric codes of the wire protocol (fl_job.fbs enums), as Python enums."""

from __future__ import annotations

import enum

MAX_DATA_SIZE = 65535  # the largest data_size startFLJob admits (UINT16_MAX, as MindSpore)


class ResponseCode(enum.IntEnum):
    """`retcode` values of every response table (fl_job.fbs `ResponseCode`)."""

    SUCCEED = 200
    SucNotReady = 201  # poll the same request again later
    OutOfTime = 300  # abandon the iteration; retry startFLJob at next_req_time
    RequestError = 400
    SystemError = 500


class CompressType(enum.IntEnum):
    """Weight encodings (fl_job.fbs `CompressType`, a byte on the wire)."""

    NO_COMPRESS = 0
    DIFF_SPARSE_QUANT = 1  # upload: sparse, quantized difference to the global model
    QUANT = 2  # download: per-tensor min/max int8 quantization
    # mindfed-only upload, never sent by or to MindSpore devices: DIFF_SPARSE_QUANT under PW_ENCRYPT, the codes masked
    # in the ring Z/2^32 on a shared grid (secagg/ring.py); startFLJob announces it with upload_quant_bound
    SECURE_SPARSE_QUANT = 3
