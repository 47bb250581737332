"""Whole rounds of one real server process, PW_ENCRYPT against plain, for `benchmarks.secagg`.

One `mindfed.cli.server_process` over an embedded Redis serves the demo's shape: 8 devices per iteration, LeNet-5
(10 classes, 1 channel: 61,706 floats), 2 servers' worth of rounds on one. The devices run in this process with the
SDK (client/secagg.py under PW_ENCRYPT) and upload fixed random updates, so the two modes differ only in the
protocol. The figure is the server's CPU seconds (utime + stime from /proc) and the wall time per iteration.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.client.device import DeviceClient, PlainText
from mindfed.client.secagg import PwSession
from mindfed.model.lenet import lenet5_shapes
from mindfed.protocol.codes import ResponseCode

REPO = Path(__file__).resolve().parents[1]
DEVICES = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _yaml(tmp: Path, mode: str, iterations: int) -> Path:
    text = (REPO / "python" / "mindfed" / "cli" / "demo.yaml").read_text()
    for key, value in {"fl_name": f"bench_{mode.lower()}", "fl_iteration_num": iterations + 10,
                       "encrypt_train_type": mode, "start_fl_job_threshold": DEVICES, "data_rate_dir": '""'}.items():
        text, n = re.subn(rf"^(\s*{key}:)[^\n]*$", rf"\g<1> {value}", text, count=1, flags=re.M)
        assert n == 1, key
    path = tmp / f"{mode}.yaml"
    path.write_text(text)
    return path


async def _device(url: str, fl_name: str, index: int, iteration: int, update: dict[str, np.ndarray],
                  session: aiohttp.ClientSession) -> None:
    client = DeviceClient(url, fl_name, f"bench_{index}", session=session, poll_interval_s=0.05)
    job = await client.join(iteration - 1, 10, 120)
    if isinstance(job, PlainText) or job.retcode != ResponseCode.SUCCEED or job.fl_plan is None:
        raise RuntimeError(f"startFLJob: {job}")
    upload = {k: v * 10 for k, v in update.items()}
    cipher = job.fl_plan.cipher
    pw = None
    if cipher is not None and cipher.encrypt_type == "PW_ENCRYPT":
        pw = PwSession(client, job.iteration, cipher.pw_t, cipher.pw_prime)
        await pw.share(120)
        upload = pw.mask(upload)
    answer = await client.update_model(job.iteration, upload, 0.1, 0.1)
    if isinstance(answer, PlainText) or answer.retcode != ResponseCode.SUCCEED:
        raise RuntimeError(f"updateModel: {answer}")
    if pw is not None:
        await pw.reveal(120)
    await client.wait_result(job.iteration, 120)


async def _rounds(url: str, fl_name: str, pid: int, iterations: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    updates = [{k: rng.standard_normal(s).astype(np.float32) for k, s in lenet5_shapes(10, 1).items()}
               for _ in range(DEVICES)]
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while True:  # the server is up once it answers
            try:
                await DeviceClient(url, fl_name, "probe", session=session).get_result(0)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        await asyncio.gather(*(_device(url, fl_name, i, 1, u, session) for i, u in enumerate(updates)))  # warm-up
        cpu0, wall0 = _cpu_s(pid), time.perf_counter()
        for iteration in range(2, iterations + 2):
            await asyncio.gather(*(_device(url, fl_name, i, iteration, u, session) for i, u in enumerate(updates)))
        return (_cpu_s(pid) - cpu0) / iterations, (time.perf_counter() - wall0) / iterations


def round_figures(mode: str, iterations: int = 5) -> tuple[float, float]:
    """(server CPU s, wall s) per iteration of `iterations` rounds under `mode` (after one warm-up round)."""
    with tempfile.TemporaryDirectory() as tmp_dir, EmbeddedRedis() as redis:
        tmp = Path(tmp_dir)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(_yaml(tmp, mode, iterations)),
             "--http_server_address", f"127.0.0.1:{port}", "--cache_address", redis.address, "--checkpoint_dir", "",
             "--num_classes", "10", "--num_channels", "1", "--output_dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=tmp)
        try:
            return asyncio.run(_rounds(f"http://127.0.0.1:{port}", f"bench_{mode.lower()}", proc.pid, iterations))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
