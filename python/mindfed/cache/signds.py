"""SignDS state in Redis (spec §7.4): the instance's r_est / is_reached / reach count, each iteration's b̂ list, and
the parameters every round of an iteration uses.

The adaptation of iteration N−1 (privacy/signds_rate.py) runs exactly once, cluster-wide, folded into the first read
of iteration N's parameters: whichever server asks first (startFLJob, updateModel, a replay) adapts and snapshots;
everyone else reads the snapshot. That is a WATCH/MULTI transaction rather than a Lua script because the arithmetic
must be MindSpore's float32 (and its six-decimal text), which Lua's doubles cannot give; a lost race retries. So no
server has to survive the iteration end for the adaptation to happen (MindSpore: the summary-lock holder only), and
devices (DSParams) and the reconstruction of their uploads always use the same r_est.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import WatchError

from mindfed.cache.store import CacheStore, Ttl, decoded
from mindfed.errors import CacheError
from mindfed.privacy.signds_rate import B_HAT_VALUES, SignDSState, adapt, parse_r_est

logger = logging.getLogger(__name__)

MAX_TRIES = 20  # WATCH conflicts only come from servers racing for the same snapshot; one of them always wins


@dataclass(frozen=True, slots=True)
class SignDSParams:
    """What one iteration's rounds use: DSParams.signds_r_est / signds_is_reached and the reconstruction's r_est."""

    r_est: float
    is_reached: int


class SignDSCache:
    """Redis operations of SignDS for one instance.

    Args:
        store: The job's store.
        instance: The instance name (SignDS state is per instance).
        ttl: TTL policy; per-iteration keys get the iteration TTL.
    """

    def __init__(self, store: CacheStore, instance: str, ttl: Ttl) -> None:
        self._store = store
        self._keys = store.job.instance(instance)
        self._ttl = ttl

    async def push_b_hat(self, iteration: int, b_hat: str) -> bool:
        """Record one device's b̂ for `iteration`; values other than "0"/"1" are dropped (as MindSpore). True if kept."""
        if b_hat not in B_HAT_VALUES:
            return False
        key = self._keys.iteration(iteration).signds_b_hat
        async with self._store.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, b_hat)
            pipe.expire(key, self._ttl.iteration_s)
            await self._store.run("push signds b_hat", pipe.execute())
        return True

    async def params(self, iteration: int, updatemodel_num: int, sign_global_lr: float) -> SignDSParams:
        """The parameters of `iteration`, adapting the iterations before it first if nobody has yet.

        Args:
            iteration: The iteration asked for (the server's current one, or one being replayed).
            updatemodel_num: `updatemodel_count(update_model_ratio, start_fl_job_threshold)`.
            sign_global_lr: `encrypt.signds.sign_global_lr` (the "old client" fallback).

        Raises:
            CacheError: Redis failed, or the transaction kept losing (MAX_TRIES).
        """
        return await self._store.run("signds params", self._params_retrying(iteration, updatemodel_num,
                                                                            sign_global_lr))

    async def _params_retrying(self, iteration: int, updatemodel_num: int, sign_global_lr: float) -> SignDSParams:
        # WatchError is a RedisError: caught here, inside store.run, or run would turn a lost race into a CacheError
        # (and the device into a safemode answer).
        for _ in range(MAX_TRIES):
            try:
                return await self._params_once(iteration, updatemodel_num, sign_global_lr)
            except WatchError:
                continue
        raise CacheError(f"signds params of iteration {iteration}: too many concurrent updates")

    async def _params_once(self, iteration: int, updatemodel_num: int, sign_global_lr: float) -> SignDSParams:
        k = self._keys
        snapshot_key = k.iteration(iteration).signds_params
        state_keys = [k.signds_r_est, k.signds_is_reached, k.signds_reached_count, k.signds_adapted_through]
        async with self._store.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(snapshot_key, *state_keys)
            snapshot = await decoded(pipe.hgetall(snapshot_key))
            if snapshot:
                # leaving the block resets the pipeline, which unwatches
                return SignDSParams(parse_r_est(snapshot.get("rEst")), int(snapshot.get("isReached", 0)))
            r_est, is_reached, reach_count, adapted = await decoded(pipe.mget(state_keys))
            state = SignDSState(parse_r_est(r_est), int(is_reached or 0), int(reach_count or 0))
            done = int(adapted or 0)
            pending = list(range(done + 1, iteration))  # ended iterations not yet summarised (normally one)
            lists = [await decoded(pipe.lrange(k.iteration(i).signds_b_hat, 0, -1)) for i in pending]
            for i, b_hats in zip(pending, lists, strict=True):
                before = state
                state = adapt(b_hats, state, updatemodel_num, sign_global_lr)
                logger.info("it %d: signds summary of %d b_hat: r_est %s -> %s, reached %d -> %d, reach count %d",
                            i, len(b_hats), before.r_est_text, state.r_est_text, before.is_reached,
                            state.is_reached, state.reach_count)
            pipe.multi()  # type: ignore[no-untyped-call]
            if pending:
                keep_s = self._ttl.config_s  # instance-long, like the instance's other keys
                pipe.set(k.signds_r_est, state.r_est_text, ex=keep_s)
                pipe.set(k.signds_is_reached, state.is_reached, ex=keep_s)
                pipe.set(k.signds_reached_count, state.reach_count, ex=keep_s)
                pipe.set(k.signds_adapted_through, pending[-1], ex=keep_s)
                for i in pending:
                    pipe.delete(k.iteration(i).signds_b_hat)  # read and cleared, as GetSignDSbHatAndReset
            pipe.hset(snapshot_key, mapping={"rEst": state.r_est_text, "isReached": state.is_reached})
            pipe.expire(snapshot_key, self._ttl.iteration_s)
            await pipe.execute()
            return SignDSParams(state.r_est, state.is_reached)
