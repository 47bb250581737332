"""enable_ssl over real servers, a real Redis and real sockets, with certificates made by the test: devices over
HTTPS, plain HTTP refused on the TLS port, the scheduler over HTTPS, MindSpore's `test_ssl_config.py` cases (three
HTTPS servers aggregate; no SSLConfig; wrong passwords; enable_ssl differing across servers) and certificate
rotation during a 5-iteration run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from cryptography import x509
from tests.integration.cluster import Server, running_server, ut_config, ut_model

from mindfed.api import FlSchedulerJob, FLServerJob, JobConfigError, SSLConfig
from mindfed.config import FLConfig, load, to_dict
from mindfed.errors import ConfigError
from mindfed.model.weights import ModelWeights
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.scheduler import SchedulerApp
from mindfed.server.hyper_params import SYNC_FAILED
from mindfed.tls.client import client_context
from mindfed.tls.dev_certs import DevCertSet, write_dev_certs
from mindfed.tls.identity import EMPTY_PASSWORD, PARSE_FAILED

pytestmark = pytest.mark.integration

SERVER_PASSWORD, CLIENT_PASSWORD = "server_password_12345", "client_password_12345"  # MindSpore's test passwords


@pytest.fixture
def certs(tmp_path: Path) -> DevCertSet:
    return write_dev_certs(tmp_path / "certs", SERVER_PASSWORD, CLIENT_PASSWORD)


def tls_config(redis_address: str, fl_name: str, certs: DevCertSet, **overrides: object) -> FLConfig:
    # the suite's Redis is plain: under enable_ssl an ip:port would mean TLS to Redis (tests/integration/
    # test_redis_security.py covers that), so it is named as an explicit redis:// URL
    return ut_config(f"redis://{redis_address}/0", fl_name, **certs.yaml_overrides(),  # type: ignore[arg-type]
                     **overrides)


class HttpsServer(Server):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.node.port}/"


@asynccontextmanager
async def https_server(config: FLConfig, model: ModelWeights, tmp_path: Path, certs: DevCertSet,
                       **options: Any) -> AsyncIterator[HttpsServer]:
    """A started HTTPS ServerNode and a device session trusting the test CA."""
    async with running_server(config, model, tmp_path, ssl_server_password=SERVER_PASSWORD,
                              ssl_client_password=CLIENT_PASSWORD, **options) as plain:
        connector = aiohttp.TCPConnector(ssl=client_context(certs.ca_cert_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            yield HttpsServer(plain.node, session, plain.fl_name)


async def peer_serial(port: int, ca: Path) -> int:
    """The serial number of the certificate a new connection to `port` is shown."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(ca))
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
    return x509.load_der_x509_certificate(der).serial_number


async def one_iteration(server: Server, iteration: int, weights: dict[str, np.ndarray]) -> None:
    job = parse_response_fl_job(await server.start_fl_job(f"dev{iteration}", data_size=2))
    assert (job.retcode, job.iteration) == (200, iteration), job.reason
    up = parse_response_update_model(await server.update_model(f"dev{iteration}", iteration,
                                                               {k: v * 2 for k, v in weights.items()}))
    assert up.retcode == 200, up.reason
    view = await server.wait_model(iteration, timeout_s=15)
    assert view.reason == f"Get model for iteration {iteration}"


async def test_devices_train_over_https_and_plain_http_to_the_tls_port_fails(
        redis_address: str, fl_name: str, tmp_path: Path, certs: DevCertSet) -> None:
    model = ut_model()
    async with https_server(tls_config(redis_address, fl_name, certs), model, tmp_path, certs) as server:
        assert server.node.scheme == "https"
        weights = {n: np.full(model[n].shape, 0.5, np.float32) for n in model.aggregated_names}
        await one_iteration(server, 1, weights)
        view = await server.wait_model(1)
        got = {t.name: np.asarray(t.data) for t in view.feature_map}
        np.testing.assert_allclose(got["feature_conv"], 0.5)
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.post(f"http://127.0.0.1:{server.node.port}/getModel", data=b"x",
                                 timeout=aiohttp.ClientTimeout(total=5))
            # a device that does not trust the CA refuses the server
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await plain.post(f"https://127.0.0.1:{server.node.port}/getModel", data=b"x",
                                 timeout=aiohttp.ClientTimeout(total=5))


async def test_the_scheduler_serves_https_and_refuses_plain_http(
        redis_address: str, fl_name: str, tmp_path: Path, certs: DevCertSet) -> None:
    cfg = tls_config(redis_address, fl_name, certs)
    app = SchedulerApp(cfg, "127.0.0.1:0", ssl_server_password=SERVER_PASSWORD)
    await app.start()
    try:
        assert app.url.startswith("https://")
        async with https_server(cfg, ut_model(), tmp_path, certs):
            connector = aiohttp.TCPConnector(ssl=client_context(certs.ca_cert_path))
            async with (aiohttp.ClientSession(connector=connector) as session,
                        session.get(app.url + "/state", timeout=aiohttp.ClientTimeout(total=10)) as resp):
                state = json.loads(await resp.text())
            assert [n["role"] for n in state["nodes"]] == ["SERVER"], state
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.get(app.url.replace("https", "http") + "/state", timeout=aiohttp.ClientTimeout(total=5))
    finally:
        await app.stop()
    with pytest.raises(ConfigError, match=EMPTY_PASSWORD):
        SchedulerApp(cfg, "127.0.0.1:0")


async def test_three_https_servers_aggregate(redis_address: str, fl_name: str, tmp_path: Path,
                                             certs: DevCertSet) -> None:
    # MindSpore's test_ssl_config_three_server_two_client_one_iterations_success, over our servers
    model = ut_model()
    rng = np.random.default_rng(0)
    cfg = tls_config(redis_address, fl_name, certs, **{"round.start_fl_job_threshold": 2})
    async with AsyncExitStack() as stack:
        s1, s2, s3 = [await stack.enter_async_context(https_server(cfg, model, tmp_path / f"s{k}", certs))
                      for k in range(3)]
        assert parse_response_fl_job(await s1.start_fl_job("fl_id_xxxx1", data_size=16)).retcode == 200
        assert parse_response_fl_job(await s2.start_fl_job("fl_id_xxxx2", data_size=8)).retcode == 200
        u1 = {n: rng.standard_normal(model[n].shape).astype(np.float32) for n in model.aggregated_names}
        u2 = {n: rng.standard_normal(model[n].shape).astype(np.float32) for n in model.aggregated_names}
        assert parse_response_update_model(await s2.update_model("fl_id_xxxx1", 1, u1)).retcode == 200
        assert parse_response_update_model(await s3.update_model("fl_id_xxxx2", 1, u2)).retcode == 200
        served = [await s.wait_model(1) for s in (s1, s2, s3)]
    for view in served:
        got = {t.name: np.asarray(t.data) for t in view.feature_map}
        for name in model.aggregated_names:
            np.testing.assert_allclose(got[name], ((u1[name] + u2[name]) / 24).reshape(-1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tls_first", [True, False])
async def test_enable_ssl_differing_across_servers_fails_the_later_start(
        redis_address: str, fl_name: str, tmp_path: Path, certs: DevCertSet, tls_first: bool) -> None:
    tls_cfg, plain_cfg = tls_config(redis_address, fl_name, certs), ut_config(redis_address, fl_name)
    first, second = (tls_cfg, plain_cfg) if tls_first else (plain_cfg, tls_cfg)
    async with running_server(first, ut_model(), tmp_path / "a", ssl_server_password=SERVER_PASSWORD,
                              ssl_client_password=CLIENT_PASSWORD):
        with pytest.raises(ConfigError, match=SYNC_FAILED) as exc:
            async with running_server(second, ut_model(), tmp_path / "b", ssl_server_password=SERVER_PASSWORD,
                                      ssl_client_password=CLIENT_PASSWORD):
                pass
    assert "enable_ssl" in str(exc.value)


async def test_certificates_replaced_during_a_5_iteration_run(redis_address: str, fl_name: str, tmp_path: Path,
                                                              certs: DevCertSet) -> None:
    model = ut_model()
    cfg = tls_config(redis_address, fl_name, certs)
    weights = {n: np.ones(model[n].shape, np.float32) for n in model.aggregated_names}
    async with https_server(cfg, model, tmp_path, certs, tls_poll_s=0.05) as server:
        tls = server.node.tls
        assert tls is not None
        serials = [await peer_serial(server.node.port, certs.ca_cert_path)]
        for iteration in range(1, 6):  # the device session's keep-alive connection spans the rotations
            await one_iteration(server, iteration, weights)
            if iteration in (2, 4):  # replace the p12 between rounds; the next handshake shows the new one
                reloads = tls.reloads
                certs.ca.write_p12(certs.server_cert_path, SERVER_PASSWORD, f"mindfed server {iteration}")
                async with asyncio.timeout(10):
                    while tls.reloads == reloads:
                        await asyncio.sleep(0.02)
                serials.append(await peer_serial(server.node.port, certs.ca_cert_path))
                assert serials[-1] == tls.identity.cert.serial_number
        assert len(set(serials)) == 3
        assert server.node.state is not None
        assert server.node.state.iteration == 6


# ------------------------------------------------------------------------------------- the job API


def job_yaml(tmp_path: Path, redis_address: str, fl_name: str, certs: DevCertSet) -> str:
    path = tmp_path / "job.yaml"
    import yaml

    path.write_text(yaml.safe_dump(to_dict(tls_config(redis_address, fl_name, certs))))
    assert load(path).enable_ssl
    return str(path)


def test_a_server_job_without_ssl_config_or_with_wrong_passwords_fails_with_mindspores_texts(
        redis_address: str, fl_name: str, tmp_path: Path, certs: DevCertSet) -> None:
    yaml_path = job_yaml(tmp_path, redis_address, fl_name, certs)
    with pytest.raises(RuntimeError, match=EMPTY_PASSWORD):  # MindSpore's tests catch RuntimeError
        FLServerJob(yaml_path, "127.0.0.1:0", checkpoint_dir=str(tmp_path / "ckpt")).run(dict(ut_model()))
    with pytest.raises(JobConfigError, match=PARSE_FAILED):
        FLServerJob(yaml_path, "127.0.0.1:0", checkpoint_dir=str(tmp_path / "ckpt"),
                    ssl_config=SSLConfig("server_password_xxxxx", "client_password_xxxxx")).run(dict(ut_model()))
    with pytest.raises(RuntimeError, match=PARSE_FAILED):
        FlSchedulerJob(yaml_path, "127.0.0.1:0", ssl_config=SSLConfig("wrong", CLIENT_PASSWORD)).run()


def test_a_scheduler_job_with_ssl_config_serves_https(redis_address: str, fl_name: str, tmp_path: Path,
                                                      certs: DevCertSet) -> None:
    import threading
    import urllib.error
    import urllib.request

    job = FlSchedulerJob(job_yaml(tmp_path, redis_address, fl_name, certs), "127.0.0.1:0",
                         ssl_config=SSLConfig(SERVER_PASSWORD, CLIENT_PASSWORD))
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(job.run, errors), daemon=True)
    thread.start()  # off the main thread: stopped by job.stop()
    try:
        for _ in range(200):
            if job.port or errors:
                break
            thread.join(0.05)
        assert not errors
        assert job.port
        context = client_context(certs.ca_cert_path)
        with pytest.raises(urllib.error.HTTPError) as answer:  # 400 "Cannot find cluster info": no server yet
            urllib.request.urlopen(f"https://127.0.0.1:{job.port}/state", timeout=5, context=context)  # noqa: S310
        answer.value.close()
        assert answer.value.code == 400  # an answer over HTTPS
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no TLS handshake: the server hangs up
            urllib.request.urlopen(f"http://127.0.0.1:{job.port}/state", timeout=5)  # noqa: S310
    finally:
        job.stop()
        thread.join(10)


def _run(target: Any, errors: list[BaseException]) -> None:
    try:
        target()
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        errors.append(exc)


def test_demo_and_job_tls_material_is_valid_for_the_client(certs: DevCertSet) -> None:
    context = client_context(certs.ca_cert_path)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
