"""PW_ENCRYPT on three server processes (spec §7.1): 20 devices spread their requests over the servers at random
(Java's useElb); after every device has its peers' shares, one server is SIGKILLed while updates arrive. The others
finish the protocol, take over the dead server's acknowledged (durable) updates, and unmask the exact FedAvg: of the
float uploads, and (mindfed-only secure compressed uploads, DIFF_SPARSE_QUANT masked in the ring) of the same
quantised sparse updates."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import yaml
from tests.e2e.cluster_procs import SHAPES, ServerProcs, job_yaml, wait_for
from tests.integration.ring_reference import quantised_fedavg

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.client.device import DeviceClient, PlainText, UpdateModelResult, downloaded_weights
from mindfed.client.secagg import PwAborted, PwSession
from mindfed.client.upload_privacy import UploadPrivacy
from mindfed.errors import NetworkError
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.views import ResponseFLJobView

N, DROPPED, T = 20, 2, 8
DEADLINE_S = 90.0
RATE, BOUND = 0.4, 0.05


async def served(session: aiohttp.ClientSession, url: str, iteration: int) -> dict[str, np.ndarray] | None:
    client = DeviceClient(url, "pwk", "observer", session=session)
    answer = await client.get_model(iteration)
    if isinstance(answer, PlainText) or answer.retcode != ResponseCode.SUCCEED or answer.iteration <= iteration:
        return None
    return {t.name: np.array(t.data) for t in answer.feature_map}


async def up(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        answer = await DeviceClient(url, "pwk", "observer", session=session).get_result(0)
    except NetworkError:
        return False
    return not (isinstance(answer, PlainText) and answer.kind == "safemode")


async def upload(s: PwSession, job: ResponseFLJobView, w: dict[str, np.ndarray], n: int,
                 secure: bool) -> UpdateModelResult:
    """Float: w·n masked. Secure: w is the trained difference to the received (zero) model, ring-masked."""
    if not secure:
        return await s.client.update_model(s.iteration, s.mask({k: v * n for k, v in w.items()}), 0.1, 0.1)
    received = downloaded_weights(job)
    trained = {k: received[k] + w[k] for k in received}
    masked = UploadPrivacy().secure_compressed(job, received, trained, n, s)
    assert masked is not None
    return await s.client.update_model_secure(s.iteration, masked.tensors, masked.rate, 0.1, 0.1)


async def scenario(cluster: ServerProcs, urls: dict[int, str], secure: bool) -> tuple[float, int]:
    rng = np.random.default_rng(5)
    scale = 0.02 if secure else 1.0  # secure: training differences, mostly inside the grid [-B, B]
    updates = [({k: (scale * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()},
                int(rng.integers(1, 100))) for _ in range(N)]
    victim = next(iter(urls))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        for url in urls.values():
            await wait_for(lambda url=url: up(session, url), 60, f"server {url}")
        sessions: list[PwSession] = []
        jobs: list[ResponseFLJobView] = []
        for i, (_, n) in enumerate(updates):
            client = DeviceClient(list(urls.values()), "pwk", f"dev_{i:02d}", session=session, poll_interval_s=0.05)
            job = await client.join(0, n, DEADLINE_S)
            assert not isinstance(job, PlainText), job
            assert job.retcode == ResponseCode.SUCCEED, job.reason
            assert job.fl_plan is not None
            assert job.fl_plan.cipher is not None
            sessions.append(PwSession(client, job.iteration, job.fl_plan.cipher.pw_t, job.fl_plan.cipher.pw_prime))
            jobs.append(job)
        assert len({s.prime for s in sessions}) == 1, "every server hands out the cluster's one prime"
        await asyncio.gather(*(s.share(DEADLINE_S) for s in sessions))
        uploaders = list(range(DROPPED, N))  # devices 0 and 1 drop after shareSecrets
        acked: list[int] = []
        for half, targets in ((uploaders[:9], list(urls)), (uploaders[9:], None)):
            if targets is None:
                cluster.kill(victim)  # SIGKILL with some updates acknowledged by it
                live = [u for p, u in urls.items() if p != victim]
                for s in sessions:
                    s.client = DeviceClient(live, "pwk", s.fl_id, session=session, poll_interval_s=0.05)
            for i in half:
                s = sessions[i]
                if targets is not None:  # before the kill: spread the uploads over all three on purpose
                    url = urls[targets[i % len(targets)]]
                    s.client = DeviceClient(url, "pwk", s.fl_id, session=session, poll_interval_s=0.05)
                w, n = updates[i]
                answer = await upload(s, jobs[i], w, n, secure)
                assert not isinstance(answer, PlainText), answer
                assert answer.retcode == ResponseCode.SUCCEED, answer.reason
                acked.append(i)
        live = [u for p, u in urls.items() if p != victim]
        for i in uploaders:
            sessions[i].client = DeviceClient(live, "pwk", sessions[i].fl_id, session=session, poll_interval_s=0.05)
        with contextlib.suppress(PwAborted):  # late reconstructors may be told the round is full
            await asyncio.gather(*(sessions[i].reveal(DEADLINE_S) for i in uploaders))
        model: dict[str, np.ndarray] = {}

        async def aggregated() -> bool:
            got = await served(session, live[0], 1)
            if got is not None:
                model.update(got)
            return got is not None

        await wait_for(aggregated, 60, "the unmasked model of iteration 1")
    if secure:  # the zero model plus the FedAvg of the dequantised sparse updates
        zero = ModelWeights({k: np.zeros(s, np.float32) for k, s in SHAPES.items()})
        expected, _ = quantised_fedavg(zero, [updates[i] for i in acked], 1, RATE, BOUND)
    else:
        total = sum(updates[i][1] for i in acked)
        expected = {k: sum(updates[i][0][k].astype(np.float64) * updates[i][1] for i in acked) / total
                    for k in SHAPES}
    return max(float(np.max(np.abs(model[k] - expected[k]))) for k in SHAPES), len(acked)


def secure_yaml(path: Path) -> Path:
    """The job with secure compressed uploads on: DIFF_SPARSE_QUANT kept under PW_ENCRYPT, masked in the ring."""
    config = yaml.safe_load(path.read_text())
    config["compression"].update(upload_compress_type="DIFF_SPARSE_QUANT", upload_sparse_rate=RATE,
                                 secure_compressed_upload=True, secure_quant_bound=BOUND)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("secure", [False, True], ids=["float", "secure_compressed"])
def test_three_servers_one_killed_after_share_secrets_give_the_exact_aggregate(tmp_path: Path, secure: bool) -> None:
    with EmbeddedRedis() as redis:
        job = job_yaml(tmp_path, "pwk", fl_iteration_num=2, encrypt_train_type="PW_ENCRYPT",
                       start_fl_job_threshold=N, update_model_ratio=0.9, reconstruct_secrets_threshold=T,
                       cipher_time_window=60000, start_fl_job_time_window=120000, update_model_time_window=120000,
                       global_iteration_time_window=240000)
        cluster = ServerProcs(secure_yaml(job) if secure else job, redis.address, tmp_path)
        ports = [free_port() for _ in range(3)]
        try:
            for port in ports:
                cluster.start(port)
            urls = {p: f"http://127.0.0.1:{p}" for p in ports}
            err, uploaded = asyncio.run(asyncio.wait_for(scenario(cluster, urls, secure), 240))
        finally:
            cluster.stop_all()
        what = "secure compressed uploads" if secure else "float uploads"
        print(f"PW_ENCRYPT 3 servers, one SIGKILLed, {what}: {uploaded} updates, max abs error vs "
              f"{'quantised ' if secure else ''}FedAvg {err:.3g}")
        assert uploaded == N - DROPPED
        assert err < (1e-6 if secure else 1e-4), cluster.logs()
        logs = "".join((tmp_path / f"server_{p}.log").read_text() for p in ports)
        assert re.search(r"(replayed|checkpoint of) [1-9]\d* (logged )?updates", logs), "taken over from Redis"
