"""PW_ENCRYPT on three server processes (spec §7.1): 20 devices spread their requests over the servers at random
(Java's useElb); after every device has its peers' shares, one server is SIGKILLed while updates arrive. The others
finish the protocol, take over the dead server's acknowledged (durable) updates, and unmask the exact FedAvg."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import numpy as np
from tests.e2e.cluster_procs import SHAPES, ServerProcs, job_yaml, wait_for

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.client.device import DeviceClient, PlainText
from mindfed.client.secagg import PwAborted, PwSession
from mindfed.errors import NetworkError
from mindfed.protocol.codes import ResponseCode

N, DROPPED, T = 20, 2, 8
DEADLINE_S = 90.0


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


async def scenario(cluster: ServerProcs, urls: dict[int, str]) -> tuple[float, int]:
    rng = np.random.default_rng(5)
    updates = [({k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}, int(rng.integers(1, 100)))
               for _ in range(N)]
    victim = next(iter(urls))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        for url in urls.values():
            await wait_for(lambda url=url: up(session, url), 60, f"server {url}")
        sessions: list[PwSession] = []
        for i, (_, n) in enumerate(updates):
            client = DeviceClient(list(urls.values()), "pwk", f"dev_{i:02d}", session=session, poll_interval_s=0.05)
            job = await client.join(0, n, DEADLINE_S)
            assert not isinstance(job, PlainText), job
            assert job.retcode == ResponseCode.SUCCEED, job.reason
            assert job.fl_plan is not None
            assert job.fl_plan.cipher is not None
            sessions.append(PwSession(client, job.iteration, job.fl_plan.cipher.pw_t, job.fl_plan.cipher.pw_prime))
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
                answer = await s.client.update_model(s.iteration, s.mask({k: v * n for k, v in w.items()}), 0.1, 0.1)
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
    total = sum(updates[i][1] for i in acked)
    expected = {k: sum(updates[i][0][k].astype(np.float64) * updates[i][1] for i in acked) / total for k in SHAPES}
    return max(float(np.max(np.abs(model[k] - expected[k]))) for k in SHAPES), len(acked)


def test_three_servers_one_killed_after_share_secrets_give_the_exact_aggregate(tmp_path: Path) -> None:
    with EmbeddedRedis() as redis:
        yaml = job_yaml(tmp_path, "pwk", fl_iteration_num=2, encrypt_train_type="PW_ENCRYPT",
                        start_fl_job_threshold=N, update_model_ratio=0.9, reconstruct_secrets_threshold=T,
                        cipher_time_window=60000, start_fl_job_time_window=120000, update_model_time_window=120000,
                        global_iteration_time_window=240000)
        cluster = ServerProcs(yaml, redis.address, tmp_path)
        ports = [free_port() for _ in range(3)]
        try:
            for port in ports:
                cluster.start(port)
            urls = {p: f"http://127.0.0.1:{p}" for p in ports}
            err, uploaded = asyncio.run(asyncio.wait_for(scenario(cluster, urls), 240))
        finally:
            cluster.stop_all()
        print(f"PW_ENCRYPT 3 servers, one SIGKILLed: {uploaded} updates, max abs error vs FedAvg {err:.3g}")
        assert uploaded == N - DROPPED
        assert err < 1e-4, cluster.logs()
