"""Errors of the MindSpore-compatible job API.

MindSpore Federated raises `RuntimeError` for a bad parameter, a bad feature map or a failed start, and its tests
catch exactly that; ours are also `MindFedError`s, and `TypeError`/`ValueError`/`ConfigError` where that is what
they are, so both `except RuntimeError` and our own handlers catch them. All take one message argument, so they
survive pickling (MindSpore's test harness sends them through a `multiprocessing.Pipe`).
"""

from __future__ import annotations

from mindfed.errors import ConfigError, MindFedError


class JobError(MindFedError, RuntimeError):
    """A job could not be built or started; the message is MindSpore's where it has one."""


class JobTypeError(JobError, TypeError):
    """A parameter has the wrong type ("Parameter 'manage_address' should be str, ...")."""


class JobValueError(JobError, ValueError):
    """A parameter has the right type but a value MindSpore refuses (empty str, non-float32 or empty data)."""


class JobConfigError(JobError, ConfigError):
    """The YAML, an address or a mode is invalid or unsupported (wraps ConfigError, keeping its text)."""
