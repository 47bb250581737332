"""Which protection startFLJob's cipher asks a device to apply to its upload, and applying it: the one place the
device SDK decides, so that a mode it cannot apply is an error instead of a plain upload.

Modes: NOT_ENCRYPT (plain w·n), DP_ENCRYPT (client/dp.py) and PW_ENCRYPT (w·n masked by the iteration's
client/secagg.py PwSession, which the caller passes) are applied; under PW_ENCRYPT a mindfed server may ask for
secure compressed uploads instead (`secure_compressed`, client/secure_upload.py). SIGNDS uploads no weights
(client/signds.py).
A mode the SDK does not apply (STABLE_PW_ENCRYPT, unknown)
raises PrivacyModeError rather than upload plain weights.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import numpy as np

from mindfed.client.device import DeviceClient, PlainText, downloaded_weights
from mindfed.client.dp import DpDevice, secure_generator
from mindfed.client.secagg import PwSession
from mindfed.client.secure_upload import SecureCompression, SecureUpload
from mindfed.errors import PrivacyModeError
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.plan import CipherParams
from mindfed.protocol.views import ResponseFLJobView

logger = logging.getLogger(__name__)

NOT_ENCRYPT, DP_ENCRYPT, PW_ENCRYPT = "NOT_ENCRYPT", "DP_ENCRYPT", "PW_ENCRYPT"
APPLIED_MODES = frozenset({NOT_ENCRYPT, DP_ENCRYPT, PW_ENCRYPT})


def announced_mode(job: ResponseFLJobView) -> str:
    """The encrypt_type of `job`'s FLPlan; a plan without a cipher table asks for none (NOT_ENCRYPT)."""
    plan = job.fl_plan
    if plan is None or plan.cipher is None:
        return NOT_ENCRYPT
    return plan.cipher.encrypt_type or NOT_ENCRYPT


class UploadPrivacy:
    """One device's upload protection across iterations.

    Args:
        rng: noise source; None: `secure_generator()` (tests pass a seeded one).
    """

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self._dp = DpDevice(rng if rng is not None else secure_generator())
        self.mode = NOT_ENCRYPT
        """The mode of the last `protect` call."""

    @property
    def clip(self) -> float:
        """The device's current adaptive DP clip C."""
        return self._dp.clip

    def protect(self, job: ResponseFLJobView, before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                data_size: int, pw: PwSession | None = None) -> dict[str, np.ndarray]:
        """The upload (name → weights·n) of the trained `after`, protected as `job` asks.

        Raises:
            PrivacyModeError: `job` asks for a mode this SDK does not apply, or PW_ENCRYPT without the session
                whose keys mask the upload.
        """
        mode = announced_mode(job)
        if mode == PW_ENCRYPT:
            if pw is None:
                raise PrivacyModeError("startFLJob asks for PW_ENCRYPT but no PwSession was given to mask the "
                                       "upload; refusing to upload plain weights")
            self.mode = mode
            return pw.mask({name: np.asarray(value) * data_size for name, value in after.items()})
        if mode not in APPLIED_MODES:
            raise PrivacyModeError(f"startFLJob asks for encrypt_type {mode}, which this device SDK cannot apply "
                                   f"(it applies {', '.join(sorted(APPLIED_MODES))}); refusing to upload plain weights")
        self.mode = mode
        if mode == DP_ENCRYPT:
            cipher = _cipher(job)
            return self._dp.protect(before, after, data_size, cipher.dp_eps, cipher.dp_delta)
        return {name: np.asarray(value) * data_size for name, value in after.items()}

    def secure_compressed(self, job: ResponseFLJobView, before: Mapping[str, np.ndarray],
                          after: Mapping[str, np.ndarray], data_size: int, pw: PwSession | None) -> SecureUpload | None:
        """The ring-masked compressed upload when `job` asks for one (mindfed-only), else None (use `protect`).

        Raises:
            PrivacyModeError: `job` asks for it outside PW_ENCRYPT or without the session whose keys mask it.
            ProtocolError: the announcement has no usable grid bound.
        """
        secure = SecureCompression.announced(job, before, data_size)
        if secure is None:
            return None
        if announced_mode(job) != PW_ENCRYPT or pw is None:
            raise PrivacyModeError("startFLJob asks for secure compressed uploads, which need PW_ENCRYPT and the "
                                   "PwSession whose keys mask them; refusing to upload unmasked codes")
        self.mode = PW_ENCRYPT
        return secure.encode(after, pw)

    async def after_iteration(self, client: DeviceClient, job: ResponseFLJobView, before: Mapping[str, np.ndarray],
                              deadline_s: float) -> None:
        """DP_ENCRYPT: fetch the new global model (getModel) and adapt the clip, as Java does after getResult."""
        if announced_mode(job) != DP_ENCRYPT:
            return
        model = await _wait_model(client, job.iteration, deadline_s)
        if model is None:
            logger.info("%s: no model of iteration %d to adapt the DP clip to (job over)", client.fl_id,
                        job.iteration)
            return
        self._dp.adapt_clip(job.iteration, model, before, _cipher(job).dp_norm_clip)


def _cipher(job: ResponseFLJobView) -> CipherParams:
    plan = job.fl_plan
    assert plan is not None, "announced_mode saw a plan"
    assert plan.cipher is not None, "DP_ENCRYPT comes in a cipher table"
    return plan.cipher


async def _wait_model(client: DeviceClient, iteration: int, deadline_s: float) -> dict[str, np.ndarray] | None:
    """The global model after `iteration`; None when the server answers that the job is over (or refuses)."""
    async with asyncio.timeout(deadline_s):
        while True:
            answer = await client.get_model(iteration)
            if isinstance(answer, PlainText):
                if answer.finished:
                    return None
            elif answer.retcode == ResponseCode.SUCCEED:
                return downloaded_weights(answer)
            elif answer.retcode != ResponseCode.SucNotReady:
                return None
            await asyncio.sleep(client.poll_interval_s)
