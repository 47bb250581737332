"""Model weights and model files: ModelWeights, MindSpore .ckpt, safetensors, .npz, torch state dicts, recovery."""

from mindfed.model.ckpt import read_ckpt, write_ckpt
from mindfed.model.formats import SUPPORTED_SUFFIXES, load_weights, save_safetensors
from mindfed.model.lenet import LENET5_NAMES, init_lenet5
from mindfed.model.recovery import RecoveryCheckpoints
from mindfed.model.weights import ModelWeights

__all__ = [
    "LENET5_NAMES",
    "SUPPORTED_SUFFIXES",
    "ModelWeights",
    "RecoveryCheckpoints",
    "init_lenet5",
    "load_weights",
    "read_ckpt",
    "save_safetensors",
    "write_ckpt",
]
