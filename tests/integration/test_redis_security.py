"""A cluster over a Redis locked as deployments lock it: a password, an ACL user, TLS with client certificates. Two
servers and the scheduler run 3 iterations on each; a wrong password or CA is a clear start-up error, no hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_scheduler, running_server, ut_config, ut_model
from tests.integration.secured_redis import Pki, acl_redis, make_pki, password_redis, tls_redis, tls_redis_server

from mindfed.cache.connection import PASSWORD_ENV, RedisTls, target_of, tls_refusal
from mindfed.cache.store import CacheStore
from mindfed.errors import CacheAccessError
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.summary.metrics_file import read_all
from mindfed.tls.dev_certs import write_dev_certs

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pw_12345"


@pytest.fixture(scope="module")
def redis_binary() -> str:
    found = tls_redis_server()
    if found is None:
        pytest.skip("no redis-server built with TLS (apt-get install -y redis-server)")
    return found


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_port(redis_binary: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tls_redis(redis_binary, tmp_path_factory.mktemp("redis-tls"), pki) as port:
        yield port


def tls_keys(pki: Pki, ca: Path | None = None, server_name: str = "") -> dict[str, object]:
    return {"distributed_cache.cacert_filename": str(ca or pki.ca), "distributed_cache.cert_filename":
            str(pki.client_cert), "distributed_cache.private_key_filename": str(pki.client_key),
            "distributed_cache.server_name": server_name}


async def run_three_iterations(address: str, fl_name: str, tmp_path: Path, passwords: dict[str, str] | None = None,
                               **overrides: object) -> None:
    """Two servers and a scheduler over `address`; two devices per iteration, one on each server. `passwords`:
    the p12 passwords (ssl_server_password, ssl_client_password) under enable_ssl."""
    model = ut_model()
    cfg = ut_config(address, fl_name, **{"round.start_fl_job_threshold": 2, "fl_iteration_num": 3, **overrides})
    passwords = passwords or {}
    async with AsyncExitStack() as stack:
        scheduler = await stack.enter_async_context(running_scheduler(
            cfg, **{k: v for k, v in passwords.items() if k == "ssl_server_password"}))
        servers = [await stack.enter_async_context(running_server(cfg, model, tmp_path / f"s{k}", **passwords))
                   for k in range(2)]
        for it in range(1, 4):
            for k, server in enumerate(servers):
                job = parse_response_fl_job(await server.start_fl_job(f"d{k}", data_size=1, iteration=it - 1))
                assert job.retcode == 200, job.reason
            for k, server in enumerate(servers):
                upload = {n: np.full(model[n].shape, float(it + k), np.float32) for n in model.aggregated_names}
                assert parse_response_update_model(await server.update_model(f"d{k}", it, upload)).retcode == 200
            for server in servers:
                served = await server.wait_model(it)
                for tensor in served.feature_map:  # the mean of it and it + 1
                    np.testing.assert_allclose(np.asarray(tensor.data), it + 0.5)
        state = await scheduler.ok("/state")
        assert sorted(n["role"] for n in state["nodes"]) == ["SERVER", "SERVER"]
        await servers[0].wait_iteration(4)
    lines = read_all(tmp_path / "s0" / "metrics.json") + read_all(tmp_path / "s1" / "metrics.json")
    assert sorted(line["currentIteration"] for line in lines) == [1, 2, 3]  # one summary writer per iteration
    assert all(line["iterationResult"] == "success" for line in lines)


async def test_cluster_runs_over_a_password_redis(redis_binary: str, fl_name: str, tmp_path: Path) -> None:
    with password_redis(redis_binary, tmp_path / "redis", PASSWORD) as port:
        await run_three_iterations(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", fl_name, tmp_path)


async def test_cluster_takes_the_password_from_the_environment(redis_binary: str, fl_name: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with password_redis(redis_binary, tmp_path / "redis", PASSWORD) as port:
        await run_three_iterations(f"127.0.0.1:{port}", fl_name, tmp_path)


async def test_cluster_runs_as_an_acl_user(redis_binary: str, fl_name: str, tmp_path: Path) -> None:
    with acl_redis(redis_binary, tmp_path / "redis", "alice", PASSWORD) as port:
        await run_three_iterations(f"redis://alice:{PASSWORD}@127.0.0.1:{port}/3", fl_name, tmp_path)


async def test_cluster_runs_over_tls_with_client_certificates(tls_port: int, pki: Pki, fl_name: str,
                                                              tmp_path: Path) -> None:
    await run_three_iterations(f"rediss://127.0.0.1:{tls_port}", fl_name, tmp_path, **tls_keys(pki))


async def test_server_name_is_the_name_the_certificate_is_checked_against(tls_port: int, pki: Pki) -> None:
    # the certificate names 127.0.0.1 and redis.test, not localhost
    files = RedisTls(str(pki.ca), "", str(pki.client_cert), str(pki.client_key))
    named = RedisTls(str(pki.ca), "", str(pki.client_cert), str(pki.client_key), server_name="redis.test")
    assert await probe(target_of(f"rediss://localhost:{tls_port}", named)) == ""
    with pytest.raises(CacheAccessError, match="^Redis TLS handshake failed: certificate verify failed.*Hostname "
                                               "mismatch"):
        await probe(target_of(f"rediss://localhost:{tls_port}", files))


async def test_enable_ssl_makes_an_ip_port_address_tls(tls_port: int, pki: Pki) -> None:
    files = RedisTls(str(pki.ca), "", str(pki.client_cert), str(pki.client_key))
    assert await probe(target_of(f"127.0.0.1:{tls_port}", files, enable_ssl=True)) == ""
    assert "use rediss:// or enable_ssl" in await probe(target_of(f"127.0.0.1:{tls_port}", files))


async def test_a_wrong_password_stops_the_server_at_once_naming_the_cause(redis_binary: str, fl_name: str,
                                                                         tmp_path: Path) -> None:
    with password_redis(redis_binary, tmp_path / "redis", PASSWORD) as port:
        cfg = ut_config(f"redis://:wrong-one@127.0.0.1:{port}", fl_name)
        started = time.monotonic()
        with pytest.raises(CacheAccessError, match="^Redis authentication failed") as err:
            async with running_server(cfg, ut_model(), tmp_path):
                pass
        assert time.monotonic() - started < 3.0  # not the 5 s cache wait
        assert "wrong-one" not in str(err.value)
        assert "redis://:***@127.0.0.1" in str(err.value)
        with pytest.raises(CacheAccessError, match="^Redis authentication failed.*none was given"):
            async with running_scheduler(ut_config(f"127.0.0.1:{port}", fl_name)):
                pass


async def test_a_wrong_ca_stops_the_server_naming_certificate_verification(tls_port: int, pki: Pki, fl_name: str,
                                                                          tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other-ca")
    cfg = ut_config(f"rediss://127.0.0.1:{tls_port}", fl_name, **tls_keys(pki, ca=other.ca))
    with pytest.raises(CacheAccessError, match="^Redis TLS handshake failed: certificate verify failed"):
        async with running_server(cfg, ut_model(), tmp_path):
            pass


async def test_no_client_certificate_is_a_tls_error(tls_port: int, pki: Pki) -> None:
    with pytest.raises(CacheAccessError, match="^Redis TLS handshake failed"):
        await probe(target_of(f"rediss://127.0.0.1:{tls_port}", RedisTls(str(pki.ca))))


async def test_a_listening_connection_names_the_missing_client_certificate(tls_port: int, pki: Pki) -> None:
    # The probe's last resort when every PING was reset (TLS 1.3 sends the refusal after the client's handshake,
    # and the reset for the unread PING often wins): a connection that sends nothing receives the alert itself.
    refused = await tls_refusal(target_of(f"rediss://127.0.0.1:{tls_port}", RedisTls(str(pki.ca))))
    assert refused is not None
    assert str(refused).startswith("Redis TLS handshake failed at rediss://127.0.0.1:")
    files = RedisTls(str(pki.ca), "", str(pki.client_cert), str(pki.client_key))
    assert await tls_refusal(target_of(f"rediss://127.0.0.1:{tls_port}", files), listen_s=0.3) is None


async def probe(target: object) -> str:
    store = CacheStore.connect(target, "probe")  # type: ignore[arg-type]
    try:
        return await asyncio.wait_for(store.probe(), timeout=10)
    finally:
        await store.close()


async def test_enable_ssl_cluster_over_a_tls_redis_at_ip_port(tls_port: int, pki: Pki, fl_name: str,
                                                              tmp_path: Path) -> None:
    """MindSpore's test_ssl_config case: enable_ssl everywhere, an ip:port Redis address therefore TLS (with the
    distributed_cache TLS keys), HTTPS devices and scheduler, mutual TLS between the servers: 3 iterations."""
    certs = write_dev_certs(tmp_path / "certs")
    await run_three_iterations(f"127.0.0.1:{tls_port}", fl_name, tmp_path,
                               {"ssl_server_password": certs.server_password,
                                "ssl_client_password": certs.client_password},
                               **tls_keys(pki), **certs.yaml_overrides())
