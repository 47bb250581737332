"""Sentinel and Cluster addresses (`redis+sentinel://`, `redis+cluster://`): what they name, the clear refusals of
the config, the client settings built from them (credentials, TLS), and that no text shows their password."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio.connection import Connection
from redis.asyncio.sentinel import SentinelManagedConnection

from mindfed.address import Address
from mindfed.cache import ha_url, redis_url
from mindfed.cache.connection import (
    PASSWORD_ENV,
    SENTINEL_PASSWORD_ENV,
    NamedSentinelSSLConnection,
    NamedSSLConnection,
    RedisTls,
    target_for,
    target_of,
)
from mindfed.cache.ha_url import Topology
from mindfed.cli.launcher import cache_address_for_child
from mindfed.config.schema_cluster import DistributedCacheConfig
from mindfed.errors import ConfigError

SECRET = "p%40ss-W0rd"  # percent-encoded "p@ss-W0rd"
SENTINELS = "10.0.0.1:26379,10.0.0.2:26379,[::1]:26380"


def test_a_sentinel_address_names_the_sentinels_the_master_and_the_db() -> None:
    ha = ha_url.parse(f"redis+sentinel://alice:{SECRET}@{SENTINELS}/mymaster/3", "masked")
    assert ha.topology == Topology.SENTINEL
    assert ha.nodes == (Address("10.0.0.1", 26379), Address("10.0.0.2", 26379), Address("::1", 26380))
    assert (ha.master, ha.db, ha.tls, ha.username, ha.password) == ("mymaster", 3, False, "alice", "p@ss-W0rd")
    assert ha_url.parse("rediss+sentinel://h:1/m", "masked").db == 0
    assert ha_url.parse("rediss+sentinel://h:1/m", "masked").tls


def test_a_cluster_address_names_its_seed_nodes() -> None:
    ha = ha_url.parse("redis+cluster://redis-0.redis:6379,redis-1.redis:6379/", "masked")
    assert ha.topology == Topology.CLUSTER
    assert ha.nodes == (Address("redis-0.redis", 6379), Address("redis-1.redis", 6379))
    assert (ha.master, ha.db) == ("", 0)


@pytest.mark.parametrize(("address", "why"), [
    ("redis+sentinel:///mymaster", "names no node"),
    ("redis+sentinel://h:1,,h:2/mymaster", "names no node"),
    ("redis+sentinel://h/mymaster", "is not an address"),
    ("redis+sentinel://h:99999/mymaster", "is not an address"),
    ("redis+sentinel://h:1,h:1/mymaster", "names 'h:1' twice"),
    ("redis+sentinel://h:1", "names no Sentinel master"),
    ("redis+sentinel://h:1/", "names no Sentinel master"),
    ("redis+sentinel://h:1/m/x", "only a database number"),
    ("redis+sentinel://h:1/m/0/1", "only a database number"),
    ("redis+sentinel://h:1/m?ssl_cert_reqs=none", "takes no ?options"),
    ("redis+cluster://h:1/2", "database 0 only"),
    ("redis+cluster://", "names no node"),
])
def test_a_malformed_address_is_refused_with_the_reason(address: str, why: str) -> None:
    with pytest.raises(ConfigError, match=r"^distributed_cache\.address: ") as err:
        DistributedCacheConfig(address=address)
    assert why in str(err.value)


def test_replica_acks_default_to_one_under_sentinel_and_zero_elsewhere() -> None:
    assert DistributedCacheConfig(address="redis+sentinel://h:1/m").effective_replica_acks == 1
    assert DistributedCacheConfig(address="redis+sentinel://h:1/m", replica_acks=0).effective_replica_acks == 0
    assert DistributedCacheConfig(address="redis+cluster://h:1").effective_replica_acks == 0
    assert DistributedCacheConfig(address="127.0.0.1:6379").effective_replica_acks == 0
    assert DistributedCacheConfig(address="127.0.0.1:6379", replica_acks=2).effective_replica_acks == 2


@pytest.mark.parametrize(("values", "why"), [
    ({"address": "redis+cluster://h:1", "replica_acks": 1}, r"^distributed_cache\.replica_acks: not supported"),
    ({"address": "rediss+cluster://h:1", "server_name": "r"}, r"^distributed_cache\.server_name: not supported"),
    ({"address": "rediss+cluster://h:1", "capath": "/etc/ssl"}, r"^distributed_cache\.capath: not supported"),
    ({"address": "", "replica_acks": 1}, r"^distributed_cache\.replica_acks: the embedded Redis has no replica"),
    ({"address": "h:1", "replica_acks": -2}, r"^distributed_cache\.replica_acks"),
])
def test_what_a_topology_cannot_honour_is_refused(values: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        DistributedCacheConfig(**values)  # type: ignore[arg-type]


def test_sentinel_settings_take_the_data_and_the_sentinel_credentials_apart() -> None:
    env = {PASSWORD_ENV: "data-env", SENTINEL_PASSWORD_ENV: "sentinel-env"}
    target = target_of(f"redis+sentinel://alice:{SECRET}@{SENTINELS}/mymaster/2", env=env)
    assert (target.topology, target.master, len(target.nodes)) == (Topology.SENTINEL, "mymaster", 3)
    assert target.settings["password"] == "p@ss-W0rd"
    assert target.settings["db"] == 2
    assert target.settings["connection_class"] is SentinelManagedConnection
    assert target.sentinel_settings["password"] == "sentinel-env"
    assert target.sentinel_settings["connection_class"] is Connection
    bare = target_of(f"redis+sentinel://{SENTINELS}/mymaster", env={PASSWORD_ENV: "data-env"})
    assert bare.settings["password"] == "data-env"
    assert "password" not in bare.sentinel_settings


def test_tls_reaches_the_sentinels_and_the_master(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    target = target_of("rediss+sentinel://h:1/m", RedisTls(cacert_filename=str(ca), server_name="redis.test"),
                       env={})
    assert target.tls
    assert target.settings["connection_class"] is NamedSentinelSSLConnection
    assert target.sentinel_settings["connection_class"] is NamedSSLConnection
    for settings in (target.settings, target.sentinel_settings):
        assert (settings["ssl_ca_certs"], settings["ssl_server_name"]) == (str(ca), "redis.test")
    cluster = target_of("rediss+cluster://h:1", RedisTls(cacert_filename=str(ca)), env={})
    assert (cluster.settings["ssl"], cluster.settings["ssl_ca_certs"]) == (True, str(ca))


def test_target_for_carries_the_replica_acknowledgements() -> None:
    cache = DistributedCacheConfig(address="redis+sentinel://h:1/m", replica_ack_timeout_ms=250)
    target = target_for(cache, env={})
    assert (target.replica_acks, target.replica_ack_timeout_ms) == (1, 250)


@pytest.mark.parametrize("address", [f"redis+sentinel://alice:{SECRET}@{SENTINELS}/m/0",
                                     f"rediss+cluster://:{SECRET}@h:1,h:2"])
def test_no_text_shows_the_password(address: str) -> None:
    cache = DistributedCacheConfig(address=address)
    target = target_of(address, env={})
    shown = [cache.display_address, repr(cache), str(target), repr(target), redis_url.mask(address),
             repr(cache.ha), cache.ha.describe() if cache.ha else ""]
    assert all(SECRET not in text and "p@ss" not in text for text in shown), shown
    assert "***" in cache.display_address


def test_a_child_gets_the_password_in_its_environment_not_its_argv() -> None:
    env: dict[str, str] = {}
    bare = cache_address_for_child(f"redis+sentinel://alice:{SECRET}@{SENTINELS}/m/0", env)
    assert bare == f"redis+sentinel://alice@{SENTINELS}/m/0"
    assert env == {PASSWORD_ENV: "p@ss-W0rd"}
