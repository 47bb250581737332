"""What one server process knows about the cluster right now (the local mirror of Redis state)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mindfed.aggregation.accumulator import IterationAccumulator
from mindfed.cache.iteration import IterationCache
from mindfed.cache.signds import SignDSParams
from mindfed.cache.store import FINISHED, RUNNING, CacheStore, Ttl
from mindfed.config import FLConfig
from mindfed.net.endpoint import TcpEndpoint
from mindfed.pki import TrustAnchors
from mindfed.server.folded_marks import FoldedMarks
from mindfed.server.iteration_watch import IterationWatch
from mindfed.server.model_store import ModelStore
from mindfed.server.partials import Scratch
from mindfed.server.phase import Phase
from mindfed.server.replicas import ReplicaStore, Replicator
from mindfed.server.stats_buffer import StatsBuffer


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_node_id(tcp_address: str) -> str:
    """MindSpore's node id format: `{ip}:{port}::{local time}::{rand}` (spec §1.2)."""
    stamp = datetime.now().strftime("%Y-%m-%d-%H:%M:%S.%f")
    stamp = f"{stamp[:-3]}.{stamp[-3:]}"  # %f is µs: print as .mmm.uuu like MindSpore's GetTimeString
    return f"{tcp_address}::{stamp}::{random.randint(10000, 99999)}"


def make_instance_name() -> str:
    stamp = datetime.now().strftime("%Y-%m-%d-%H:%M:%S.%f")
    return f"i_{stamp[:-3]}.{stamp[-3:]}"


@dataclass(slots=True)
class ServerState:
    """Mutable per-process state; only the event-loop thread touches it."""

    config: FLConfig
    store: CacheStore
    ttl: Ttl
    node_id: str
    tcp_address: str
    models: ModelStore
    accumulator: IterationAccumulator
    instance: str = ""
    iteration: int = 1
    running_state: int = RUNNING  # the instance's, mirrored from Redis (the scheduler disables, enables, finishes)
    phase: Phase = field(default_factory=Phase)  # STARTING until start-up has synced with Redis
    stopping: bool = False
    cache_ok: bool = True
    iteration_start_ms: int | None = None
    in_flight: int = 0
    completing: set[int] = field(default_factory=set)
    stats: StatsBuffer = field(default_factory=StatsBuffer)
    heartbeat_ttl_s: int = 10
    peers: TcpEndpoint | None = None  # the node-to-node transport
    update_log: str = "on"  # UPDATE_LOG_MODES: where an accepted update is made durable before it is acked
    replicator: Replicator | None = None  # update_log "replica": the copies this server sends (server/replicas.py)
    replicas: ReplicaStore = field(default_factory=ReplicaStore)  # the copies this server holds for its peers
    checkpoint_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one checkpoint at a time (checkpointer.py)
    scratch: Scratch = field(default_factory=Scratch)  # the encode buffer the holder of checkpoint_lock may use
    folded_marks: FoldedMarks = field(default_factory=FoldedMarks)
    # Called (on the loop) when the cluster has folded every update the iteration needs.
    on_all_folded: Callable[[int], None] | None = None
    pw_prime: bytes = b""  # PW_ENCRYPT: the cluster's Shamir prime (server/secagg_prime.py), read at start-up
    signds: dict[int, SignDSParams] = field(default_factory=dict)  # SIGNDS: iteration → its r_est (signds_upload.py)
    pki: TrustAnchors | None = None  # client_verify.pki_verify: the roots and CRL devices are checked against
    iteration_watch: IterationWatch = field(default_factory=IterationWatch)  # long-polled getModel/getResult

    @property
    def safemode(self) -> bool:
        """Whether the phase turns rounds away with the safemode text (see server/phase.py)."""
        return self.phase.safemode

    @property
    def finished(self) -> bool:
        return self.running_state == FINISHED

    def cache(self) -> IterationCache:
        """The Redis view of the current iteration."""
        return self.store_iteration(self.iteration)

    def store_iteration(self, iteration: int) -> IterationCache:
        """The Redis view of `iteration` of the current instance."""
        return self.iteration_cache(self.instance, iteration)

    def iteration_cache(self, instance: str, iteration: int) -> IterationCache:
        """The Redis view of `iteration` of `instance` (a finished one's, after a `/newInstance`)."""
        return IterationCache(self.store, instance, iteration, self.ttl)

    async def lagging(self) -> bool:
        """Whether the cluster has already moved past this server's iteration (it notices within one tick).

        Checked only on refusal paths: a device that saw the new iteration on one server must not be sent away for
        a whole iteration window by a server that has not switched yet; it gets the safemode text and retries.
        """
        status = await self.store.read_status(self.instance)
        return status is not None and status.iteration > self.iteration

    def next_req_time_ms(self) -> int:
        """When a device turned away should come back: the end of the current iteration's windows (spec §3.4).

        Never in the past: Java devices abort on a next_req_time that is not in the future.
        """
        window = self.config.round.iteration_time_window_ms(self.config.encrypt,
                                                            self.config.client_verify.pki_verify)
        start = self.iteration_start_ms or now_ms()
        return max(start + window, now_ms() + 1000)
