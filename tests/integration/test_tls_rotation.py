"""Certificate rotation without downtime (issue 10, item 8) over real servers, a real Redis and real sockets: a
3-server TLS cluster runs 5 iterations while every server's server.p12 and client.p12 and the shared CA file are
replaced (old CA -> old + new bundle -> new CA alone); every iteration aggregates exactly and new connections, HTTPS
and node-to-node, present the new certificates. And SIGHUP reloads a real server process's material."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from tests.integration.cluster import Server, running_server, ut_config, ut_model
from tests.tls_certs import CIPHERS, CLIENT_PASSWORD, SERVER_PASSWORD, Pki
from tests.unit.net.test_tls_reload import pem_pair, presented

from mindfed.config import FLConfig
from mindfed.errors import NetworkError
from mindfed.model.weights import ModelWeights
from mindfed.net import TcpEndpoint
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.server.peers import HELLO

pytestmark = pytest.mark.integration
PASSWORDS = {"ssl_server_password": SERVER_PASSWORD, "ssl_client_password": CLIENT_PASSWORD}
SERVERS = 3
DEVICES = 6


def replace(target: Path, source: Path) -> None:
    """Atomically puts a copy of `source` at `target` (as an operator's `mv` would)."""
    staged = target.with_name(target.name + ".new")
    shutil.copyfile(source, staged)
    staged.replace(target)


def tls_config(redis_address: str, fl_name: str, server_p12: Path, client_p12: Path, ca: Path) -> FLConfig:
    # the suite's Redis is plain: an explicit redis:// URL keeps it so under enable_ssl
    return ut_config(f"redis://{redis_address}/0", fl_name, **{
        "enable_ssl": True, "ssl.server_cert_path": str(server_p12), "ssl.client_cert_path": str(client_p12),
        "ssl.ca_cert_path": str(ca), "ssl.cipher_list": CIPHERS, "round.start_fl_job_threshold": DEVICES})


async def iteration(servers: list[Server], model: ModelWeights, it: int,
                    midway: Callable[[], Awaitable[None]] | None = None) -> None:
    """DEVICES devices spread over `servers` train iteration `it`; every server must serve the exact weighted mean.
    `midway` runs between the devices' startFLJob and updateModel (a rotation in the middle of the round)."""
    rng = np.random.default_rng(it)
    uploads = {f"d{it}-{i}": ({n: rng.standard_normal(model[n].shape).astype(np.float32)
                               for n in model.aggregated_names}, int(rng.integers(1, 20))) for i in range(DEVICES)}
    for server in servers:
        await server.wait_iteration(it, timeout_s=40.0)
    for i, (fl_id, (_, n)) in enumerate(uploads.items()):
        job = parse_response_fl_job(await servers[i % len(servers)].start_fl_job(fl_id, data_size=n))
        assert (job.retcode, job.iteration) == (200, it), job.reason
    if midway is not None:
        await midway()
    for i, (fl_id, (weights, n)) in enumerate(uploads.items()):
        answer = await servers[i % len(servers)].update_model(fl_id, it, {k: v * n for k, v in weights.items()})
        assert parse_response_update_model(answer).retcode == 200
    total = sum(n for _, n in uploads.values())
    for server in servers:
        view = await server.wait_model(it, timeout_s=40.0)
        for tensor in view.feature_map:
            if tensor.name in model.aggregated_names:
                expect = sum(w[tensor.name].astype(np.float64) * n for w, n in uploads.values()) / total
                np.testing.assert_allclose(np.asarray(tensor.data), expect.reshape(-1), rtol=1e-5, atol=1e-6)


async def https_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=context), 10)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der).serial_number


def node_port(server: Server) -> int:
    assert server.node.state is not None
    return int(server.node.state.tcp_address.rsplit(":", 1)[1])


async def wait_for(condition: object, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_certificates_and_ca_replaced_during_a_5_iteration_run_of_3_servers(
        redis_address: str, fl_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: the old CA's certificates in the files each server reads; a new CA to move to
    old, new = Pki(tmp_path / "old", "old CA"), Pki(tmp_path / "new", "new CA")
    live = tmp_path / "live"
    live.mkdir()
    ca_file = live / "ca.pem"
    replace(ca_file, old.ca_path)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(old.ca_path.read_bytes() + new.ca_path.read_bytes())
    files = []
    for k in range(SERVERS):
        node = old.node(f"s{k}")
        server_p12, client_p12 = live / f"s{k}-server.p12", live / f"s{k}-client.p12"
        replace(server_p12, node.server_p12)
        replace(client_p12, node.client_p12)
        files.append((server_p12, client_p12))
    probe = pem_pair(new.node("probe").client_p12, CLIENT_PASSWORD, tmp_path / "probe")  # a new-CA peer
    model = ut_model()
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(running_server(
            tls_config(redis_address, fl_name, *files[k], ca_file), model, tmp_path / f"s{k}", tls_poll_s=0.05,
            **PASSWORDS)) for k in range(SERVERS)]
        watchers = [s.node.tls_watcher for s in servers]
        assert all(w is not None for w in watchers)

        async def reloaded_after(change: Callable[[], None]) -> None:
            before = [w.reloads for w in watchers]  # type: ignore[union-attr]
            change()

            async def done() -> bool:  # HTTPS and the node transport, on every server
                return all(w.reloads >= b + 2 for w, b in zip(watchers, before, strict=True))  # type: ignore[union-attr]
            await wait_for(done, "every server reloads HTTPS and the node transport")

        renewed = [new.node(f"s{k}-renewed") for k in range(SERVERS)]

        async def to_bundle() -> None:  # the CA file becomes old + new CA
            await reloaded_after(lambda: replace(ca_file, bundle))

        async def to_new_certificates() -> None:  # every server's server.p12 and client.p12 from the new CA
            def change() -> None:
                for (server_p12, client_p12), node in zip(files, renewed, strict=True):
                    replace(server_p12, node.server_p12)
                    replace(client_p12, node.client_p12)
            await reloaded_after(change)
            for server, node in zip(servers, renewed, strict=True):
                async def shows_new(server: Server = server, serial: int = node.certs[0].serial_number) -> bool:
                    return (await presented(node_port(server), bundle, probe)).serial_number == serial
                await wait_for(shows_new, "a new node connection presents the new server certificate")

        async def to_new_ca() -> None:  # the old CA is dropped: the CA file holds the new CA alone
            await reloaded_after(lambda: replace(ca_file, new.ca_path))

        with caplog.at_level(logging.INFO, logger="mindfed.tls.rotation"):
            # Execute: each replacement lands in the middle of a round, between startFLJob and updateModel
            await iteration(servers, model, 1)
            await iteration(servers, model, 2, midway=to_bundle)
            await iteration(servers, model, 3, midway=to_new_certificates)
            await iteration(servers, model, 4, midway=to_new_ca)
            await iteration(servers, model, 5)

        # Assert: new connections present the new certificates, HTTPS and node transport alike
        for server, node in zip(servers, renewed, strict=True):
            assert (await presented(node_port(server), new.ca_path, probe)).serial_number == node.certs[0].serial_number
            assert await https_serial(server.node.port, new.ca_path) == node.certs[0].serial_number
            assert server.node.tls is not None
            assert server.node.tls.identity.cert.serial_number == node.certs[0].serial_number
        # a new node connection from a peer of the new CA is accepted; one of the old CA is now refused
        addresses = [s.node.state.tcp_address for s in servers]  # type: ignore[union-attr]
        async with TcpEndpoint.open(tls=new.node("peer-new").options) as fresh:
            for address in addresses:
                await fresh.request(address, HELLO, b"", 10)
        async with TcpEndpoint.open(tls=old.node("peer-old", ca=bundle).options) as stale:
            with pytest.raises(NetworkError, match="TLS"):
                await stale.request(addresses[0], HELLO, b"", 10)
        assert all(s.node.state is not None and s.node.state.iteration == 6 for s in servers)
    assert "not reloaded" not in caplog.text
    assert "unavailable" not in caplog.text  # every partial sum crossed the node transport, none came from Redis
    assert "reloaded node transport" in caplog.text
    assert SERVER_PASSWORD not in caplog.text
    assert CLIENT_PASSWORD not in caplog.text


async def test_a_replacement_that_does_not_load_keeps_the_current_material(
        redis_address: str, fl_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki = Pki(tmp_path / "ca")
    node = pki.node("s")
    probe = pem_pair(pki.node("probe").client_p12, CLIENT_PASSWORD, tmp_path / "probe")
    model = ut_model()
    async with running_server(tls_config(redis_address, fl_name, node.server_p12, node.client_p12, pki.ca_path),
                              model, tmp_path / "s", tls_poll_s=0.05, **PASSWORDS) as server:
        watcher = server.node.tls_watcher
        assert watcher is not None
        with caplog.at_level(logging.WARNING, logger="mindfed.tls.rotation"):
            node.server_p12.write_bytes(b"\x30\x82 half written")
            await wait_for(lambda: asyncio.sleep(0, watcher.failures >= 2), "both targets refuse the file")
        assert "keeping the current material" in caplog.text
        assert (await presented(node_port(server), pki.ca_path, probe)).serial_number == node.certs[0].serial_number
        assert await https_serial(server.node.port, pki.ca_path) == node.certs[0].serial_number
        # the running server is untouched: devices still start
        job = parse_response_fl_job(await server.start_fl_job("dev", data_size=1))
        assert job.retcode == 200


# ------------------------------------------------------------------------------------- SIGHUP, a real process


async def test_sighup_reloads_the_tls_material_of_a_server_process(redis_address: str, fl_name: str,
                                                                   tmp_path: Path) -> None:
    import yaml

    from mindfed.config import to_dict

    pki = Pki(tmp_path / "ca")
    node = pki.node("s")
    probe = pem_pair(pki.node("probe").client_p12, CLIENT_PASSWORD, tmp_path / "probe")
    yaml_path = tmp_path / "job.yaml"
    yaml_path.write_text(yaml.safe_dump(to_dict(tls_config(redis_address, fl_name, node.server_p12, node.client_p12,
                                                           pki.ca_path))))
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "MINDFED_SSL_SERVER_PASSWORD": SERVER_PASSWORD, "MINDFED_SSL_CLIENT_PASSWORD": CLIENT_PASSWORD}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(yaml_path),
             "--http_server_address", f"127.0.0.1:{port}", "--tcp_server_ip", "127.0.0.1", "--checkpoint_dir", "",
             "--output_dir", str(tmp_path)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path, env=env)
    try:
        async def serving() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return await https_serial(port, pki.ca_path) == node.certs[0].serial_number
            except OSError:
                return False
        await wait_for(serving, "the server process serves HTTPS", 60)
        # Execute: new certificates in place, then SIGHUP (the process's poll is 5 s: the log tells which one ran)
        renewed = pki.node("s-renewed")
        replace(node.server_p12, renewed.server_p12)
        replace(node.client_p12, renewed.client_p12)
        proc.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            return "reloaded node transport (SIGHUP)" in log.read_text()
        await wait_for(reloaded, "SIGHUP reloads the node transport")
        # Assert: the process lives on; new connections present the new certificate
        assert proc.poll() is None
        text = log.read_text()
        assert "reloaded HTTPS (SIGHUP)" in text
        assert SERVER_PASSWORD not in text
        assert CLIENT_PASSWORD not in text
        assert await https_serial(port, pki.ca_path) == renewed.certs[0].serial_number
        # the node id (logged as "server <ip>:<port>::..." when it starts serving) names the node transport's port
        tcp_port = int(re.search(r"server 127\.0\.0\.1:(\d+)::", text).group(1))  # type: ignore[union-attr]
        assert (await presented(tcp_port, pki.ca_path, probe)).serial_number == renewed.certs[0].serial_number
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_scheduler_presents_a_replaced_certificate_after_sighup(redis_address: str, fl_name: str,
                                                                            tmp_path: Path) -> None:
    from mindfed.scheduler import SchedulerApp

    pki = Pki(tmp_path / "ca")
    node = pki.node("sched")
    cfg = tls_config(redis_address, fl_name, node.server_p12, node.client_p12, pki.ca_path)
    app = SchedulerApp(cfg, "127.0.0.1:0", ssl_server_password=SERVER_PASSWORD, tls_poll_s=3600)  # no poll here
    await app.start()
    try:
        assert await https_serial(app.port, pki.ca_path) == node.certs[0].serial_number
        renewed = pki.node("sched-renewed")
        replace(node.server_p12, renewed.server_p12)
        app.reload_tls()  # what SIGHUP calls
        assert await https_serial(app.port, pki.ca_path) == renewed.certs[0].serial_number
        assert app.tls_watcher is not None
        assert app.tls_watcher.reloads == 1
    finally:
        await app.stop()
