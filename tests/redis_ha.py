"""Real replicated and sharded Redis for the tests: a Sentinel set (a master, its replicas and `redis-server --sentinel`
processes) and a Redis Cluster (`redis-server --cluster-enabled yes` nodes given their slots and joined here).

Every process is started here on 127.0.0.1 in a temporary directory, and stopped by its own PID; every wait is bounded.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from mindfed.cache.embedded import find_redis_server, free_port, wait_for_port

START_S = 15.0
SLOTS = 16384


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.05)


def _info(port: int, section: str) -> dict[str, object]:
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as client:
        return dict(client.info(section))


@dataclass
class _Procs:
    """Processes started by one fixture, by name; logs in `tmp/<name>.log`."""

    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> None:
        with (self.tmp / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen([find_redis_server(), *args], cwd=self.tmp, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n" + (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
                         for name in self.procs)


def _data_node_args(port: int) -> list[str]:
    return ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--protected-mode", "yes",
            "--dbfilename", f"dump-{port}.rdb"]


class SentinelSet:
    """A master with `replicas` replicas and `sentinels` sentinels (quorum 2) watching it as `master_name`.

    The sentinels declare the master down after `down_after_ms` without an answer, so a killed master is replaced
    within a few seconds.
    """

    def __init__(self, tmp: Path, *, master_name: str = "mymaster", replicas: int = 2, sentinels: int = 3,
                 down_after_ms: int = 1000) -> None:
        self.tmp, self.master_name, self.down_after_ms = tmp, master_name, down_after_ms
        self.master_port = free_port()
        self.replica_ports = [free_port() for _ in range(replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._procs = _Procs(tmp)

    @property
    def address(self) -> str:
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.master_name}/0"

    def start(self) -> SentinelSet:
        try:
            self._procs.start("master", _data_node_args(self.master_port))
            wait_for_port("127.0.0.1", self.master_port, START_S)
            for i, port in enumerate(self.replica_ports):
                self._procs.start(f"replica{i}", [*_data_node_args(port), "--replicaof", "127.0.0.1",
                                                  str(self.master_port)])
            wait_until(lambda: _info(self.master_port, "replication")["connected_slaves"] == len(self.replica_ports),
                  START_S, "replicas in sync")
            for i, port in enumerate(self.sentinel_ports):
                conf = self.tmp / f"sentinel{i}.conf"  # a sentinel rewrites its config file: one each
                conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.tmp}\n"
                                f"sentinel monitor {self.master_name} 127.0.0.1 {self.master_port} 2\n"
                                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                                f"sentinel failover-timeout {self.master_name} 10000\n"
                                f"sentinel parallel-syncs {self.master_name} 2\n")
                self._procs.start(f"sentinel{i}", [str(conf), "--sentinel"])
            wait_until(self._sentinels_agree, START_S, "sentinels that see each other and every replica")
        except BaseException:
            print(self._procs.logs())
            self.stop()
            raise
        return self

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as sentinel:
                state = sentinel.sentinel_master(self.master_name)
            if (state["num-other-sentinels"] < len(self.sentinel_ports) - 1
                    or state["num-slaves"] < len(self.replica_ports)):
                return False
        return True

    def kill_master(self) -> int:
        """SIGKILL the master the sentinels name now; returns its port."""
        port = self.current_master_port()
        name = "master" if port == self.master_port else f"replica{self.replica_ports.index(port)}"
        self._procs.kill(name)
        return port

    def current_master_port(self) -> int:
        with redis.Redis(host="127.0.0.1", port=self.sentinel_ports[0], socket_timeout=2) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(self.master_name)
        return int(port)

    def stop(self) -> None:
        self._procs.stop_all()

    def logs(self) -> str:
        return self._procs.logs()


class RedisClusterSet:
    """`masters` cluster nodes (no replicas) sharing the 16384 slots evenly."""

    def __init__(self, tmp: Path, *, masters: int = 3) -> None:
        self.tmp = tmp
        self.ports = [_cluster_port() for _ in range(masters)]
        self._procs = _Procs(tmp)

    @property
    def address(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> RedisClusterSet:
        try:
            for port in self.ports:
                self._procs.start(f"node{port}", [*_data_node_args(port), "--cluster-enabled", "yes",
                                                  "--cluster-config-file", f"nodes-{port}.conf",
                                                  "--cluster-node-timeout", "2000"])
            for port in self.ports:
                wait_for_port("127.0.0.1", port, START_S)
            self._join()
            wait_until(lambda: all(_cluster_ok(port) for port in self.ports), START_S,
                  "cluster_state:ok on every node")
        except BaseException:
            print(self._procs.logs())
            self.stop()
            raise
        return self

    def _join(self) -> None:
        """What `redis-cli --cluster create` does, without needing redis-cli: an even share of the slots and a
        distinct config epoch per node, then every node meets the first."""
        share = SLOTS // len(self.ports)
        for i, port in enumerate(self.ports):
            first, last = i * share, SLOTS - 1 if i == len(self.ports) - 1 else (i + 1) * share - 1
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as node:
                node.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
                node.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                if i:
                    node.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0])

    def stop(self) -> None:
        self._procs.stop_all()

    def logs(self) -> str:
        return self._procs.logs()


def _cluster_ok(port: int) -> bool:
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True) as client:
        info = client.cluster("INFO")
    return bool(info.get("cluster_state") == "ok") if isinstance(info, dict) else "cluster_state:ok" in str(info)


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a port too, and free."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
