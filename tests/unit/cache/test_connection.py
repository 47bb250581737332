"""The Redis connection builder: address forms, where credentials come from, TLS settings, and that no text it makes
shows a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfed.cache import redis_url
from mindfed.cache.connection import PASSWORD_ENV, USERNAME_ENV, NamedSSLConnection, RedisTls, target_of
from mindfed.cache.store import CacheStore
from mindfed.cli.launcher import cache_address_for_child
from mindfed.config.schema_cluster import DistributedCacheConfig
from mindfed.errors import ConfigError

SECRET = "p%40ss-W0rd"  # percent-encoded "p@ss-W0rd"


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:6379", {"host": "127.0.0.1", "port": 6379}),
    ("unix:/tmp/r.sock", {"path": "/tmp/r.sock"}),
    (f"redis://alice:{SECRET}@redis.local:6380/2", {"host": "redis.local", "port": 6380, "db": 2,
                                                     "username": "alice", "password": "p@ss-W0rd"}),
    ("redis://[::1]:6381", {"host": "::1", "port": 6381}),
    ("unix:///run/redis.sock?db=4", {"path": "/run/redis.sock", "db": 4}),
])
def test_every_address_form_is_read_by_redis_py(address: str, expected: dict[str, object]) -> None:
    settings = dict(target_of(address, env={}).settings)
    settings.pop("connection_class")
    assert settings == expected


def test_the_urls_password_wins_and_the_environment_fills_in() -> None:
    env = {PASSWORD_ENV: "from-env", USERNAME_ENV: "bob"}
    assert target_of("redis://alice:own@h:1", env=env).settings["password"] == "own"
    assert target_of("redis://alice:own@h:1", env=env).settings["username"] == "alice"
    plain = target_of("h:1", env=env).settings
    assert (plain["username"], plain["password"]) == ("bob", "from-env")
    assert "password" not in target_of("h:1", env={}).settings


def test_tls_follows_the_scheme_or_enable_ssl(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    tls = RedisTls(cacert_filename=str(ca), server_name="redis.test")
    assert target_of("rediss://h:1", tls, env={}).settings["connection_class"] is NamedSSLConnection
    on = target_of("h:1", tls, enable_ssl=True, env={})
    assert (on.tls, on.settings["ssl_ca_certs"], on.settings["ssl_server_name"]) == (True, str(ca), "redis.test")
    assert not target_of("h:1", tls, env={}).tls
    assert not target_of("redis://h:1", tls, enable_ssl=True, env={}).tls  # the explicit scheme wins


def test_a_missing_tls_file_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^distributed_cache\.cacert_filename: '.*nope\.pem' is not a readable"):
        target_of("rediss://h:1", RedisTls(cacert_filename=str(tmp_path / "nope.pem")), env={})


@pytest.mark.parametrize("address", [f"redis://alice:{SECRET}@h:1/0", f"rediss://:{SECRET}@h:1",
                                     f"unix:///s.sock?db=1&password={SECRET}"])
def test_no_text_shows_the_password(address: str) -> None:
    cache = DistributedCacheConfig(address=address)
    target = target_of(address, env={})
    store = CacheStore.connect(target, "job")
    shown = [cache.display_address, repr(cache), str(target), repr(target), store.address, redis_url.mask(address)]
    assert all(SECRET not in text and "p@ss" not in text and "***" in text for text in shown), shown


def test_a_malformed_url_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError, match=r"^distributed_cache\.address: 'redis://u:\*\*\*@h:99999'") as err:
        DistributedCacheConfig(address=f"redis://u:{SECRET}@h:99999")
    assert SECRET not in str(err.value)


def test_a_child_gets_the_password_in_its_environment_not_its_argv() -> None:
    env: dict[str, str] = {}
    assert cache_address_for_child(f"redis://alice:{SECRET}@h:1/0", env) == "redis://alice@h:1/0"
    assert env == {PASSWORD_ENV: "p@ss-W0rd"}
    assert cache_address_for_child("127.0.0.1:6379", env) == "127.0.0.1:6379"
