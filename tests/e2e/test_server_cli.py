"""`mindfed server`: N servers on consecutive ports over an embedded Redis; Ctrl-C stops them all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mindfed.cli.demo_cluster import free_base_port
from mindfed.protocol.request_builders import build_request_fl_job
from mindfed.protocol.responses import parse_response_fl_job

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def post(url: str, body: bytes) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5) as resp:
        return resp.read()


def wait_serving(url: str, timeout_s: float = 30) -> bytes:
    """The first answer that is not "not up yet": a refused connection, or safemode while the server starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            body = post(url, build_request_fl_job("Lenet", "probe", 0, 1, "1"))
            if body != b"The cluster is in safemode.":
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not serving within {timeout_s} s")
        time.sleep(0.2)


def test_two_servers_share_one_job_and_stop_on_ctrl_c(tmp_path: Path) -> None:
    yaml_text = (REPO / "yamls" / "lenet.yaml").read_text().replace("address: 127.0.0.1:23456", 'address: ""')
    (tmp_path / "lenet.yaml").write_text(yaml_text)
    port = free_base_port("127.0.0.1", 2)  # the two servers take consecutive ports: both must be free
    proc = subprocess.Popen([sys.executable, "-m", "mindfed.cli.main", "server", "--yaml_config",
                             str(tmp_path / "lenet.yaml"), "--http_server_address", f"127.0.0.1:{port}",
                             "--tcp_server_ip", "127.0.0.1", "--local_server_num", "2",
                             "--checkpoint_dir", str(tmp_path / "ckpt"),
                             "--log_dir", str(tmp_path / "logs")], cwd=tmp_path)
    try:
        first = parse_response_fl_job(wait_serving(f"http://127.0.0.1:{port}/startFLJob"))
        second_body = wait_serving(f"http://127.0.0.1:{port + 1}/startFLJob")
        # the same device joining through the other server is refused: the client state is shared in Redis
        assert first.retcode == 200
        assert first.iteration == 1
        assert parse_response_fl_job(second_body).reason == "Updating device metadata failed for fl id probe"
        assert (tmp_path / "logs" / f"server_{port}" / "server.log").exists()
        assert (tmp_path / "logs" / f"server_{port + 1}" / "server.log").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 130
    with pytest.raises(OSError, match="Connection refused"):
        post(f"http://127.0.0.1:{port}/startFLJob", b"x")
