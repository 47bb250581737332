"""MindSpore-compatible update compression: DIFF_SPARSE_QUANT uploads and QUANT downloads.

The arithmetic runs in C++ (`_core.compression`), bit-exact with the MindSpore device client
and server (spec §8). See docs/compression.md for the formulas and the secure-aggregation design.
"""

from mindfed.compression.quantize import CompressedTensor, dequantize, dequantize_model, quantize, quantize_model
from mindfed.compression.sparse_mask import kept_count, sparse_indices
from mindfed.compression.upload import decode_into, encode_upload, upload_diff

__all__ = [
    "CompressedTensor",
    "decode_into",
    "dequantize",
    "dequantize_model",
    "encode_upload",
    "kept_count",
    "quantize",
    "quantize_model",
    "sparse_indices",
    "upload_diff",
]
