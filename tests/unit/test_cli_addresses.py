"""Addresses at the CLI's edges: a bad --http_server_address is a config error found before anything starts, and
`mindfed finish` reads the port from every title redis-server gives itself."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from mindfed.cli.demo import demo_config
from mindfed.cli.demo_cluster import consecutive_address
from mindfed.cli.finish import ProcessInfo, cache_port_of, redis_port_of
from mindfed.cli.launcher import ServerLaunch
from mindfed.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def children() -> set[str]:
    """The pids of this process's children, from every thread's /proc entry."""
    tasks = Path(f"/proc/{os.getpid()}/task").iterdir()
    return {pid for task in tasks for pid in (task / "children").read_text().split()}


def test_a_bad_server_address_is_a_config_error_before_an_embedded_redis_starts(tmp_path: Path) -> None:
    # Prepare: the seed YAML with an embedded Redis, which the launcher starts before its servers
    yaml_path = tmp_path / "lenet.yaml"
    yaml_path.write_text((REPO / "yamls" / "lenet.yaml").read_text().replace("address: 127.0.0.1:23456", 'address: ""'))
    launch = ServerLaunch(yaml_config=str(yaml_path), http_server_address="127.0.0.1:x", log_dir=tmp_path / "logs")
    before = children()
    try:
        # Execute
        with pytest.raises(ConfigError, match=r"^'127\.0\.0\.1:x' is not an address; allowed: "):
            launch.start()
        # Assert
        assert launch.redis is None
        assert children() == before
    finally:
        launch.stop()  # stops the embedded Redis, if this regresses


def test_the_demo_refuses_a_bad_server_address_as_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^'localhost' is not an address; allowed: "):
        consecutive_address("localhost", 2)


def test_the_demo_refuses_replica_acks_its_own_redis_cannot_give() -> None:
    args = argparse.Namespace(iterations=0, yaml_config="", devices=4, servers=1)
    with pytest.raises(ConfigError, match=r"distributed_cache\.replica_acks is 1 but the demo runs its own Redis"):
        demo_config(args, {"distributed_cache.address": "redis+sentinel://h:1/m", "distributed_cache.replica_acks": 1})


def title(text: str) -> ProcessInfo:
    return ProcessInfo(pid=1, ppid=0, start_ticks=0, state="S", argv=(text,))


# What redis-server 6.2 writes for --bind 127.0.0.1, *, ::1, "-::1 127.0.0.1", ::*, "-::* *", -127.0.0.1
@pytest.mark.parametrize("bind", ["127.0.0.1", "*", "::1", "-::1", "::*", "-::*", "-127.0.0.1", "redis_host"])
def test_finish_reads_the_port_of_each_redis_server_title(bind: str) -> None:
    assert redis_port_of(title(f"/usr/bin/redis-server {bind}:6379")) == 6379


@pytest.mark.parametrize("address", ["127.0.0.1:6379", "[::1]:6379", "::1:6379", "my_redis:6379",
                                     "redis://:pw@127.0.0.1:6379/0", "rediss://alice:pw@[::1]:6379", "redis://h"])
def test_finish_reads_the_port_of_each_cache_address_the_config_takes(address: str) -> None:
    assert cache_port_of(ProcessInfo(pid=1, ppid=0, start_ticks=0, state="S",
                                     argv=("mindfed", "server", "--cache_address", address))) == 6379


def test_finish_reads_the_tls_port_of_a_tls_only_redis_server() -> None:
    info = ProcessInfo(pid=1, ppid=0, start_ticks=0, state="S",
                       argv=("redis-server", "--bind", "127.0.0.1", "--port", "0", "--tls-port", "6390"))
    assert redis_port_of(info) == 6390
