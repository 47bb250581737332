"""Sections that shape an iteration: `round:`, `summary:`, `unsupervised:` and `client:`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar

from mindfed.config.enums import EncryptType, EvalType
from mindfed.config.key_spec import enum_key, float_key, int_key, str_key, validate_fields
from mindfed.errors import ConfigError

if TYPE_CHECKING:
    from mindfed.config.schema_encrypt import EncryptConfig

logger = logging.getLogger(__name__)

DEFAULT_PARTICIPATION_TIME_LEVEL = "5,15"
_MAX_PARTICIPATION_MINUTES = 2880
# PW_ENCRYPT adds six cipher rounds (exchangeKeys, getKeys, shareSecrets, getSecrets, getClientList,
# reconstructSecrets), each with its own cipher_time_window timer.
_PW_CIPHER_ROUNDS = 6
_PKI_CIPHER_ROUNDS = 2  # pki_verify adds pushListSign and getListSign (spec §3.4)
# client.receive_buffer_bytes: below 4 KiB a connection could not take one TCP segment and an HTTP head at once;
# above 16 MiB the kernel caps SO_RCVBUF at net.core.rmem_max anyway.
MIN_RECEIVE_BUFFER_BYTES = 4096
MAX_RECEIVE_BUFFER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundConfig:
    """The `round:` section (server; every key required). Time windows are in milliseconds, as in the YAML.

    Attributes:
        start_fl_job_threshold: startFLJob count (global, in Redis) that closes the round.
        start_fl_job_time_window: startFLJob round timer, ms; the server counts it in whole seconds.
        update_model_ratio: Fraction of `start_fl_job_threshold` updateModel requests that closes the round.
        update_model_time_window: updateModel round timer, ms.
        global_iteration_time_window: Whole-iteration timer, ms; also the base of Redis TTLs.
    """

    SECTION: ClassVar[str] = "round"

    start_fl_job_threshold: int = int_key(lo=1, required=True)
    start_fl_job_time_window: int = int_key(lo=1, required=True)
    update_model_ratio: float = float_key(1.0, lo=0.0, hi=1.0, lo_open=True, required=True)
    update_model_time_window: int = int_key(lo=1, required=True)
    global_iteration_time_window: int = int_key(lo=1, required=True)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)

    @property
    def update_model_threshold(self) -> int:
        """ceil(start_fl_job_threshold x update_model_ratio), computed on the ratio as written.

        The ratio goes through its shortest decimal form, so 10 x 0.3 is 3, not 4 as binary floating
        point (3.0000000000000004) would give.
        """
        return update_model_threshold(self.start_fl_job_threshold, self.update_model_ratio)

    def iteration_time_window_ms(self, encrypt: EncryptConfig | None = None, pki_verify: bool = False) -> int:
        """The sum of the round timers one iteration can spend, in milliseconds.

        Args:
            encrypt: The `encrypt:` section; under PW_ENCRYPT its six cipher rounds add
                6 x cipher_time_window. None counts as no encryption.
            pki_verify: client_verify.pki_verify; under PW_ENCRYPT it adds 2 more cipher windows.

        Returns:
            start_fl_job_time_window + update_model_time_window (+ 6 x cipher_time_window).
        """
        total = self.start_fl_job_time_window + self.update_model_time_window
        if encrypt is not None and encrypt.encrypt_train_type is EncryptType.PW_ENCRYPT:
            rounds = _PW_CIPHER_ROUNDS + (_PKI_CIPHER_ROUNDS if pki_verify else 0)
            total += rounds * encrypt.pw_encrypt.cipher_time_window
        return total


def update_model_threshold(start_fl_job_threshold: int, update_model_ratio: float) -> int:
    """The updates that close updateModel: ceil(start_fl_job_threshold x update_model_ratio), on the ratio as written
    (see `RoundConfig.update_model_threshold`; also what the scheduler shows from the published hyper-parameters)."""
    exact = start_fl_job_threshold * Fraction(repr(update_model_ratio))
    return -(-exact.numerator // exact.denominator)


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryConfig:
    """The `summary:` section: where per-iteration metrics and failure events go.

    Attributes:
        metrics_file: JSON-lines metrics file, one line per iteration.
        failure_event_file: Appended to after `continuous_failure_times` failed iterations in a row.
        continuous_failure_times: Consecutive failed iterations that raise a failure event.
        data_rate_dir: Directory of per-day traffic files; "" disables them.
        participation_time_level: "a,b" in minutes, 0 < a < b <= 2880; anything else falls back to
            "5,15" with a warning, as in MindSpore.
    """

    SECTION: ClassVar[str] = "summary"

    metrics_file: str = str_key("metrics.json", required=True)
    failure_event_file: str = str_key("event.txt", required=True)
    continuous_failure_times: int = int_key(10, lo=1)
    data_rate_dir: str = str_key("")
    participation_time_level: str = str_key(DEFAULT_PARTICIPATION_TIME_LEVEL)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
        if _parse_levels(self.participation_time_level) is None:
            logger.warning(
                "summary.participation_time_level: %r is invalid (allowed: 'a,b' minutes with "
                "0 < a < b <= %d); using %r",
                self.participation_time_level,
                _MAX_PARTICIPATION_MINUTES,
                DEFAULT_PARTICIPATION_TIME_LEVEL,
            )
            object.__setattr__(self, "participation_time_level", DEFAULT_PARTICIPATION_TIME_LEVEL)

    @property
    def participation_time_levels(self) -> tuple[int, int]:
        """The two participation thresholds (a, b) in minutes."""
        levels = _parse_levels(self.participation_time_level)
        assert levels is not None  # replaced by the default in __post_init__ otherwise
        return levels


def _parse_levels(text: str) -> tuple[int, int] | None:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        return None
    a, b = int(parts[0]), int(parts[1])
    return (a, b) if 0 < a < b <= _MAX_PARTICIPATION_MINUTES else None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupervisedConfig:
    """The `unsupervised:` section (master only): clustering scores over device eval vectors.

    Attributes:
        cluster_client_num: Eval vectors to collect before scoring; 0 = unset, must be > 0 unless
            eval_type is NOT_EVAL.
        eval_type: The clustering score to compute.
    """

    SECTION: ClassVar[str] = "unsupervised"

    cluster_client_num: int = int_key(0, lo=1, unset=0)
    eval_type: EvalType = enum_key(EvalType, EvalType.NOT_EVAL)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
        if self.eval_type is not EvalType.NOT_EVAL and self.cluster_client_num <= 0:
            key = "unsupervised.cluster_client_num"
            raise ConfigError(
                f"{key}: {self.cluster_client_num!r} is out of range; allowed: an int >= 1 when "
                f"unsupervised.eval_type is {self.eval_type.value} (not NOT_EVAL). "
                f"Failed to check value of parameter '{key}': {self.cluster_client_num!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """The `client:` section: values pushed to devices in the FLPlan, plus the HTTP front door.

    Attributes:
        http_url_prefix: Device route = prefix + round name when non-empty (no slash inserted: write
            "/abc/"), else "/" + round name.
        client_epoch_num: Local epochs per iteration (FLPlan.epochs).
        client_batch_size: Local mini-batch size (FLPlan.mini_batch).
        client_learning_rate: Local learning rate (FLPlan.lr).
        connection_num: Most TCP connections a server accepts.
        poll_hold_ms: (mindfed) How long a getModel/getResult that would be answered SucNotReady waits for the
            iteration to move on before it is (long polling). 0, the default, answers at once, as MindSpore: a
            client that asks getResult and then goes on to other requests of the same iteration (MindSpore's own
            test harness does) would otherwise wait out the hold. Bounded by what devices allow an exchange:
            MindSpore's Java client reads for 90 s, mindfed's SDK 60 s.
        receive_buffer_bytes: (mindfed) 0: device connections get the kernel's receive buffer and its autotuning.
            Otherwise the SO_RCVBUF of every device connection, fixed at its SYN, and a 1 KiB HTTP read buffer: a
            request waiting at the admission gate then leaves its body on the device (about 4 KiB of it in the server
            process, twice this value in its kernel), so the server's memory is flat in the number of devices, at the
            price of a receive window under 64 KiB per connection (server/read_pacing.py).
    """

    SECTION: ClassVar[str] = "client"

    http_url_prefix: str = str_key("")
    client_epoch_num: int = int_key(25, lo=1)
    client_batch_size: int = int_key(32, lo=1)
    client_learning_rate: float = float_key(0.001, lo=0.0, lo_open=True)
    connection_num: int = int_key(10000, lo=1)
    poll_hold_ms: int = int_key(0, lo=0, hi=30000)
    receive_buffer_bytes: int = int_key(0, lo=0, hi=MAX_RECEIVE_BUFFER_BYTES)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
        if 0 < self.receive_buffer_bytes < MIN_RECEIVE_BUFFER_BYTES:
            key = f"{self.SECTION}.receive_buffer_bytes"
            raise ConfigError(
                f"{key}: {self.receive_buffer_bytes!r} is out of range; allowed: 0 (the kernel's autotuning) or an "
                f"int in [{MIN_RECEIVE_BUFFER_BYTES}, {MAX_RECEIVE_BUFFER_BYTES}]. "
                f"Failed to check value of parameter '{key}': {self.receive_buffer_bytes!r}"
            )
