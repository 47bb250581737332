"""enable_ssl between servers: mutual TLS on the node transport; a server the cluster's CA does not vouch for (another
CA, or revoked) cannot join, and if one is in the cluster anyway its partial sums never cross TCP and the aggregate
(rebuilt from its durable updates in Redis) is still exact."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.cluster import Server, running_server, ut_config, ut_model
from tests.tls_certs import CIPHERS, CLIENT_PASSWORD, SERVER_PASSWORD, NodeCerts, Pki

from mindfed.config import FLConfig
from mindfed.errors import ConfigError
from mindfed.model.weights import ModelWeights
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model

pytestmark = pytest.mark.integration
PASSWORDS = {"ssl_server_password": SERVER_PASSWORD, "ssl_client_password": CLIENT_PASSWORD}




def tls_config(redis_address: str, fl_name: str, node: NodeCerts, ca: Path, crl: Path | None,
               **overrides: object) -> FLConfig:
    # the suite's Redis is plain: an explicit redis:// URL keeps it so under enable_ssl
    return ut_config(f"redis://{redis_address}/0", fl_name, **{
        "enable_ssl": True, "ssl.server_cert_path": str(node.server_p12), "ssl.client_cert_path": str(node.client_p12),
        "ssl.ca_cert_path": str(ca), "ssl.crl_path": str(crl or ""), "ssl.cipher_list": CIPHERS, **overrides})


async def one_iteration(servers: list[Server], model: ModelWeights) -> None:
    """6 devices spread over `servers`; every server must serve the exact weighted mean."""
    rng = np.random.default_rng(11)
    uploads = {f"d{i}": ({n: rng.standard_normal(model[n].shape).astype(np.float32)
                          for n in model.aggregated_names}, int(rng.integers(1, 20))) for i in range(6)}
    for i, (fl_id, (_, n)) in enumerate(uploads.items()):
        server = servers[i % len(servers)]
        assert parse_response_fl_job(await server.start_fl_job(fl_id, data_size=n)).retcode == 200
    for i, (fl_id, (weights, n)) in enumerate(uploads.items()):
        server = servers[i % len(servers)]
        answer = await server.update_model(fl_id, 1, {k: v * n for k, v in weights.items()})
        assert parse_response_update_model(answer).retcode == 200
    total = sum(n for _, n in uploads.values())
    for server in servers:
        view = await server.wait_model(1, timeout_s=40.0)
        for tensor in view.feature_map:
            if tensor.name in model.aggregated_names:
                expect = sum(w[tensor.name].astype(np.float64) * n for w, n in uploads.values()) / total
                np.testing.assert_allclose(np.asarray(tensor.data), expect.reshape(-1), rtol=1e-5, atol=1e-6)


async def test_a_foreign_or_revoked_server_cannot_join_and_the_cluster_aggregates_exactly(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: two honest servers; one with a certificate of another CA, one revoked
    pki, foreign = Pki(tmp_path / "ca"), Pki(tmp_path / "foreign", "other CA")
    revoked = pki.node("revoked")
    crl = pki.crl(revoked.certs)
    model = ut_model()
    threshold = {"round.start_fl_job_threshold": 6}
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(running_server(
            tls_config(redis_address, fl_name, pki.node(f"s{k}"), pki.ca_path, crl, **threshold), model,
            tmp_path / f"s{k}", **PASSWORDS)) for k in range(2)]
        # Execute / Assert: neither intruder joins, and the start-up error says why
        intruders: dict[str, tuple[NodeCerts, Path]] = {"foreign": (foreign.node("x", ca=pki.ca_path), pki.ca_path),
                                                       "revoked": (revoked, pki.ca_path)}
        for name, (node, ca) in intruders.items():
            with pytest.raises(ConfigError, match="cannot join: all 2 live servers refuse"):
                async with running_server(tls_config(redis_address, fl_name, node, ca, None, **threshold), model,
                                          tmp_path / name, **PASSWORDS):
                    pass
        assert len(await servers[0].node.state.store.alive_servers(servers[0].node.state.instance)) == 2
        await one_iteration(servers, model)


async def test_a_foreign_server_in_the_cluster_delivers_no_partial_sum_and_the_aggregate_stays_exact(
        redis_address: str, fl_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: two honest servers, then a third with a foreign certificate that skips the join check (as a server
    # registered by other means would); it accepts devices' updates like the others
    pki, foreign = Pki(tmp_path / "ca"), Pki(tmp_path / "foreign", "other CA")
    model = ut_model()
    threshold = {"round.start_fl_job_threshold": 6}
    options: dict[str, Any] = PASSWORDS
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(running_server(
            tls_config(redis_address, fl_name, pki.node(f"s{k}"), pki.ca_path, None, **threshold), model,
            tmp_path / f"s{k}", **options)) for k in range(2)]

        async def no_check(*_: object) -> None:
            return None

        monkeypatch.setattr("mindfed.server.node.check_peers_accept_us", no_check)
        rogue = await stack.enter_async_context(running_server(
            tls_config(redis_address, fl_name, foreign.node("rogue", ca=pki.ca_path), pki.ca_path, None, **threshold),
            model, tmp_path / "rogue", **options))
        # Execute
        with caplog.at_level(logging.WARNING):
            await one_iteration([*servers, rogue], model)
    # Assert: the partial sums that had to cross the refused connections came from Redis instead
    assert "unavailable" in caplog.text
    assert "TLS" in caplog.text


async def test_update_log_replica_copies_bodies_over_mutual_tls(redis_address: str, fl_name: str, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: three honest servers under enable_ssl with update_log replica: every copy is a holder's fetch from its
    # origin, a connection in the other direction, both ends checking the other's certificate
    pki = Pki(tmp_path / "ca")
    model = ut_model()
    threshold = {"round.start_fl_job_threshold": 6}
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(running_server(
            tls_config(redis_address, fl_name, pki.node(f"s{k}"), pki.ca_path, None, **threshold), model,
            tmp_path / f"s{k}", update_log="replica", **PASSWORDS)) for k in range(3)]
        # Execute
        with caplog.at_level(logging.INFO, logger="mindfed.server.replicas"):
            await one_iteration(servers, model)
    # Assert: exact on every server (one_iteration), every copy made (none fell back to Redis)
    assert "copies go to" in caplog.text
    assert "Redis takes it" not in caplog.text
