"""Read views of the device protocol messages: what the parsers return.

Every array in a view is a numpy view into the original request/response buffer (no
copy), read-only when that buffer is `bytes`; keep the buffer alive as long as the view.
Absent strings read as "" and absent vectors as empty; the `has_*` flags tell absent
from empty where the server must (MindSpore rejects some requests for a missing field
but accepts an empty one). Enum fields stay plain ints: a hostile peer may send values
outside the enum, and the server, not the parser, decides what to answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mindfed.protocol.plan import CipherParams

FloatView = npt.NDArray[np.float32]
Int8View = npt.NDArray[np.int8]
Int32View = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True, eq=False)
class NamedTensor:
    """A FeatureMap or UnsupervisedEvalItem: a name and a float32 vector.

    Attributes:
        name: `weight_fullname` / `eval_name` ("" if absent).
        data: float32 view of `data` / `eval_data` (empty if absent).
        has_name: Whether the name field was present.
        has_data: Whether the data vector was present.
    """

    name: str
    data: FloatView
    has_name: bool = True
    has_data: bool = True

    @property
    def complete(self) -> bool:
        """Whether both name and data were present (MindSpore requires both)."""
        return self.has_name and self.has_data


@dataclass(frozen=True, slots=True, eq=False)
class CompressedTensor:
    """A CompressFeatureMap: int8 codes plus the min/max that dequantize them.

    Attributes:
        name: `weight_fullname` ("" if absent).
        data: int8 view of `compress_data` (empty if absent).
        min_val: Smallest value of the quantized range.
        max_val: Largest value of the quantized range.
        has_name: Whether the name field was present.
        has_data: Whether the compress_data vector was present.
    """

    name: str
    data: Int8View
    min_val: float
    max_val: float
    has_name: bool = True
    has_data: bool = True

    @property
    def complete(self) -> bool:
        """Whether both name and data were present."""
        return self.has_name and self.has_data


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFLJobView:
    """A parsed /startFLJob request. The pki fields matter only with pki_verify."""

    fl_name: str
    fl_id: str
    iteration: int
    data_size: int
    timestamp: str
    download_compress_types: tuple[int, ...]
    eval_data_size: int
    sign_data: bytes
    key_attestation: str
    equip_cert: str
    equip_ca_cert: str
    root_cert: str
    has_fl_name: bool
    has_fl_id: bool
    has_timestamp: bool
    has_sign_data: bool
    has_key_attestation: bool
    has_equip_cert: bool
    has_equip_ca_cert: bool


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RequestUpdateModelView:
    """A parsed /updateModel request; tensors are views into the request buffer."""

    fl_name: str
    fl_id: str
    iteration: int
    timestamp: str
    feature_map: tuple[NamedTensor, ...]
    signature: bytes
    upload_loss: float
    upload_accuracy: float
    sign: int
    index_array: Int32View
    compress_feature_map: tuple[CompressedTensor, ...]
    upload_compress_type: int
    upload_sparse_rate: float
    name_vec: tuple[str, ...]
    unsupervised_eval_items: tuple[NamedTensor, ...]
    signds_b_hat: str
    has_fl_name: bool
    has_fl_id: bool
    has_timestamp: bool
    has_feature_map: bool
    has_compress_feature_map: bool
    has_index_array: bool
    has_unsupervised_eval_items: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestGetModelView:
    """A parsed /getModel request."""

    fl_name: str
    iteration: int
    timestamp: str
    download_compress_types: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestGetResultView:
    """A parsed /getResult request."""

    fl_name: str
    iteration: int
    timestamp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestPushMetricsView:
    """A parsed /pushMetrics request (hybrid worker)."""

    loss: float
    accuracy: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FLPlanView:
    """The FLPlan of a ResponseFLJob: the training hyper-parameters for the device.

    Attributes:
        server_mode: "FEDERATED_LEARNING", "HYBRID_TRAINING" or "CLOUD_TRAINING".
        fl_name: The job name.
        iterations: Total number of iterations of the job.
        epochs: Local epochs per iteration.
        mini_batch: Local batch size.
        lr: Local learning rate.
        encrypt_type: cipher.encrypt_type ("" if no cipher table).
        cipher: All cipher parameters, or None if the table was absent.
    """

    server_mode: str
    fl_name: str
    iterations: int
    epochs: int
    mini_batch: int
    lr: float
    encrypt_type: str
    cipher: CipherParams | None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ResponseFLJobView:
    """A parsed /startFLJob response (device side)."""

    retcode: int
    reason: str
    iteration: int
    is_selected: bool
    next_req_time: str
    fl_plan: FLPlanView | None
    feature_map: tuple[NamedTensor, ...]
    timestamp: str
    upload_compress_type: int
    upload_sparse_rate: float
    download_compress_type: int
    compress_feature_map: tuple[CompressedTensor, ...]
    unsupervised_eval_flg: str
    upload_quant_bound: float = 0.0  # mindfed-only: the grid [-B, B] of SECURE_SPARSE_QUANT uploads; 0 when absent


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseUpdateModelView:
    """A parsed /updateModel response."""

    retcode: int
    reason: str
    next_req_time: str
    timestamp: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ResponseGetModelView:
    """A parsed /getModel response; `timestamp` carries the server's next_req_time."""

    retcode: int
    reason: str
    iteration: int
    feature_map: tuple[NamedTensor, ...]
    timestamp: str
    download_compress_type: int
    compress_feature_map: tuple[CompressedTensor, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseGetResultView:
    """A parsed /getResult response; `timestamp` carries the server's next_req_time."""

    retcode: int
    reason: str
    iteration: int
    timestamp: str
