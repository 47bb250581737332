"""`mindfed certs DIR` makes everything TLS and pki_verify need: a server started with its tls.yaml keys and the
passwords of its passwords.env serves a device that verifies the server with ca.crt and signs with the device chain
from DIR/pki/device, through one whole iteration."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from tests.integration.cluster import running_server, ut_config

from mindfed.cli.main import main
from mindfed.client.device import DeviceClient, PlainText
from mindfed.client.pki import DeviceIdentity
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import ResponseCode
from mindfed.tls.client import client_context

pytestmark = pytest.mark.integration


def flat(tree: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


async def test_certs_make_a_working_tls_and_pki_cluster(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert main(["certs", str(out)]) == 0
    assert main(["certs", str(out)]) == 2  # never overwrites silently
    assert (out / "passwords.env").stat().st_mode & 0o077 == 0
    env = dict(line.split("=", 1) for line in (out / "passwords.env").read_text().splitlines())
    keys = flat(yaml.safe_load((out / "tls.yaml").read_text()))
    cfg = ut_config(f"redis://{redis_address}/0", fl_name, **keys)
    device_dir = out / "pki" / "device"
    identity = DeviceIdentity(
        serialization.load_pem_private_key((device_dir / "key_attestation.key").read_bytes(), None),  # type: ignore[arg-type]
        (device_dir / "key_attestation.pem").read_text(), (device_dir / "equip_cert.pem").read_text(),
        (device_dir / "equip_ca.pem").read_text())
    model = ModelWeights({"w": np.zeros(16), "b": np.zeros(4)})
    async with running_server(cfg, model, tmp_path, ssl_server_password=env["MINDFED_SSL_SERVER_PASSWORD"],
                              ssl_client_password=env["MINDFED_SSL_CLIENT_PASSWORD"]) as server:
        url = f"https://127.0.0.1:{server.node.port}"
        async with aiohttp.ClientSession() as session:
            client = DeviceClient(url, fl_name, "", session=session, ssl_context=client_context(out / "ca.crt"),
                                  identity=identity, poll_interval_s=0.05)
            job = await client.join(0, 3, 30)
            assert not isinstance(job, PlainText), job
            assert job.retcode == ResponseCode.SUCCEED, job.reason
            answer = await client.update_model(1, {"w": np.full(16, 3.0, np.float32), "b": np.full(4, 3.0, np.float32)},
                                               0.1, 0.1)
            assert not isinstance(answer, PlainText), answer
            assert answer.retcode == ResponseCode.SUCCEED, answer.reason
        got = await server.wait_model(1, timeout_s=20)
    assert {t.name: float(t.data[0]) for t in got.feature_map} == pytest.approx({"w": 1.0, "b": 1.0})
