"""What a hybrid worker holds open while it runs (on its loop): the job's Redis, its node endpoint, its membership,
and the protocol client over them. Opened and closed as one, so a failed start leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mindfed.cache.connection import target_for
from mindfed.cache.store import CacheStore, Ttl
from mindfed.config import FLConfig
from mindfed.net.endpoint import TcpEndpoint
from mindfed.net.tls import node_tls
from mindfed.worker.hybrid import HybridWorker
from mindfed.worker.membership import WorkerMembership

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """How to run a hybrid worker beyond the YAML.

    Attributes:
        heartbeat_ttl_s: lifetime of the worker's heartbeat key (MindSpore: 10 s); a killed worker leaves the
            scheduler's /state within it.
        join_wait_s: how long to wait for the job's first server to create the instance.
        ssl_server_password, ssl_client_password: with enable_ssl, the p12 passwords of the node transport's mutual
            TLS (the worker presents ssl.client_cert_path); never logged.
    """

    heartbeat_ttl_s: int = 10
    join_wait_s: float = 60.0
    ssl_server_password: str = field(default="", repr=False)
    ssl_client_password: str = field(default="", repr=False)


class HybridSession:
    """The open resources of one hybrid worker. Make with `await HybridSession.open(...)`, end with `close()`."""

    def __init__(self, store: CacheStore, endpoint: TcpEndpoint, membership: WorkerMembership,
                 worker: HybridWorker) -> None:
        self.store, self.endpoint, self.membership, self.worker = store, endpoint, membership, worker

    @classmethod
    async def open(cls, config: FLConfig, initial_model: Mapping[str, np.ndarray],
                   options: WorkerOptions) -> HybridSession:
        """Connect, open the endpoint and register in the job's current instance.

        Raises:
            CacheError: Redis unreachable, or no instance within `options.join_wait_s`.
            ConfigError / NetworkError: the TLS material cannot be used.
        """
        store = CacheStore.connect(target_for(config.distributed_cache, config.enable_ssl), config.fl_name)
        endpoint: TcpEndpoint | None = None
        try:
            tls = node_tls(config.ssl, options.ssl_server_password, options.ssl_client_password) \
                if config.enable_ssl else None
            endpoint = TcpEndpoint.open("127.0.0.1", 0, tls=tls)  # listens, but servers never connect to a worker
            membership = WorkerMembership(store, Ttl.from_window(config.round.global_iteration_time_window),
                                          options.heartbeat_ttl_s)
            await membership.join(options.join_wait_s)
        except BaseException:
            if endpoint is not None:
                await endpoint.aclose()
            await store.close()
            raise
        return cls(store, endpoint, membership, HybridWorker(endpoint, store, membership, initial_model))

    async def close(self) -> None:
        """Leave the cluster (the worker's entry is removed from Redis at once) and close everything."""
        try:
            await asyncio.shield(self.membership.leave())
        finally:
            await self.endpoint.aclose()
            await self.store.close()
