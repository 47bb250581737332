"""Several servers, one iteration: any server takes any request, and every server serves the same global model."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.cache.durability import DurableUpdates
from mindfed.errors import NetworkError
from mindfed.net.endpoint import TcpEndpoint
from mindfed.protocol import request_builders as rq
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.server.checkpointer import checkpoint_once
from mindfed.server.partials import PartialSums
from mindfed.server.peers import PARTIAL_TENSOR, fetch_partial
from mindfed.server.replicas import checkpoint_of, copy_of, fetch_copy

pytestmark = pytest.mark.integration


async def test_three_servers_aggregate_like_one(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: 3 servers of one job; the 2nd and 3rd start with other thresholds and adopt the first one's
    model = ut_model()
    devices = 9
    rng = np.random.default_rng(5)
    uploads = {f"d{i}": ({n: rng.standard_normal(model[n].shape).astype(np.float32)
                          for n in model.aggregated_names}, int(rng.integers(1, 50))) for i in range(devices)}
    async with AsyncExitStack() as stack:
        servers = []
        for k, threshold in enumerate((devices, 2, 3)):
            cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": threshold})
            servers.append(await stack.enter_async_context(running_server(cfg, model, tmp_path / f"s{k}")))
        # Execute: join on one server, upload on another
        for i, (fl_id, (_, n)) in enumerate(uploads.items()):
            job = parse_response_fl_job(await servers[i % 3].start_fl_job(fl_id, data_size=n))
            assert job.retcode == 200, job.reason
        answers = await asyncio.gather(*(servers[(i + 1) % 3].update_model(fl_id, 1, {k: v * n for k, v in w.items()})
                                         for i, (fl_id, (w, n)) in enumerate(uploads.items())))
        assert all(parse_response_update_model(a).retcode == 200 for a in answers)
        served = [await s.wait_model(1) for s in servers]
    # Assert: the exact weighted mean, identical on every server
    total = sum(n for _, n in uploads.values())
    for name in model.aggregated_names:
        expect = sum(w[name].astype(np.float64) * n for w, n in uploads.values()) / total
        got = [next(np.asarray(t.data) for t in view.feature_map if t.name == name) for view in served]
        np.testing.assert_allclose(got[0], expect.reshape(-1), rtol=1e-5, atol=1e-6)
        assert all(np.array_equal(got[0], other) for other in got[1:])


async def test_hand_over_without_the_update_log_keeps_a_stopped_servers_updates(redis_address: str, fl_name: str,
                                                                                 tmp_path: Path) -> None:
    # With on_stop "hand_over" and no update log, a server stopped right after acknowledging an update (before its
    # once-a-second checkpoint) writes a last checkpoint, so the survivor's aggregate still holds that update.
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    options = {"update_log": False, "stop_fails_iteration": False}
    u1 = {n: np.full(model[n].shape, 3.0 * 2, np.float32) for n in model.aggregated_names}  # weights 3, n = 2
    u2 = {n: np.full(model[n].shape, 9.0 * 6, np.float32) for n in model.aggregated_names}  # weights 9, n = 6
    stopping = running_server(cfg, model, tmp_path / "s0", **options)
    s0 = await stopping.__aenter__()
    try:
        async with running_server(cfg, model, tmp_path / "s1", **options) as s1:
            assert parse_response_fl_job(await s0.start_fl_job("d1", data_size=2)).retcode == 200
            assert parse_response_fl_job(await s1.start_fl_job("d2", data_size=6)).retcode == 200
            assert parse_response_update_model(await s0.update_model("d1", 1, u1)).retcode == 200
            await stopping.__aexit__(None, None, None)  # at once: no periodic checkpoint has run yet
            stopping = None
            assert parse_response_update_model(await s1.update_model("d2", 1, u2)).retcode == 200
            served = await s1.wait_model(1)
    finally:
        if stopping is not None:
            await stopping.__aexit__(None, None, None)
    for tensor in served.feature_map:  # (3·2 + 9·6) / 8 = 7.5
        np.testing.assert_allclose(np.asarray(tensor.data), 7.5, rtol=1e-6)


async def test_a_peer_lends_its_live_sums_exactly_and_only_after_the_head(redis_address: str, fl_name: str,
                                                                          tmp_path: Path) -> None:
    # Prepare: one server, 3 devices joined, 2 of the 3 updates folded (the iteration waits for the third)
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3})
    rng = np.random.default_rng(11)
    uploads = {f"d{i}": {n: rng.standard_normal(model[n].shape).astype(np.float32) for n in model.aggregated_names}
               for i in range(3)}
    async with running_server(cfg, model, tmp_path / "s0") as server, TcpEndpoint.open() as aggregator:
        for fl_id in uploads:
            assert parse_response_fl_job(await server.start_fl_job(fl_id)).retcode == 200
        for fl_id in ("d0", "d1"):
            answer = parse_response_update_model(await server.update_model(fl_id, 1, uploads[fl_id]))
            assert answer.retcode == 200, answer.reason
        state = server.node.state
        assert state is not None
        address, instance = state.tcp_address, state.instance
        ask = json.dumps({"instance": instance, "iteration": 1, "name": "feature_conv"}).encode()
        # Execute / Assert: a tensor before its head is refused (nothing was lent)
        with pytest.raises(NetworkError, match="asked before its head"):
            await aggregator.request(address, PARTIAL_TENSOR, ask, 5.0)
        assert await fetch_partial(aggregator, address, instance, 2) is None  # not this server's iteration
        assert not state.accumulator.lent
        partial = await fetch_partial(aggregator, address, instance, 1)
        # the live sums, bit for bit, with the tags and data sizes they hold; frozen from now on
        assert partial is not None
        assert sorted(partial.tags) == ["d0", "d1"]
        assert state.accumulator.lent
        live, data_sizes, _ = await state.accumulator.lend()
        assert dict(partial.data_sizes) == data_sizes == dict.fromkeys(model.aggregated_names, 2)
        for name in model.aggregated_names:
            assert np.array_equal(partial.sums[name], live[name])
            assert partial.sums[name].flags.writeable  # the received buffer: the aggregator's to add into
            np.testing.assert_allclose(partial.sums[name], (uploads["d0"][name] + uploads["d1"][name]).reshape(-1),
                                       rtol=1e-6)


async def test_update_log_replica_keeps_each_body_on_the_next_server_and_a_marker_in_redis(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: two servers with update_log replica; 3 devices, the iteration waits for the third update
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3})
    rng = np.random.default_rng(12)
    uploads = {f"d{i}": {n: rng.standard_normal(model[n].shape).astype(np.float32) for n in model.aggregated_names}
               for i in range(3)}
    async with (running_server(cfg, model, tmp_path / "s0", update_log="replica") as s0,
                running_server(cfg, model, tmp_path / "s1", update_log="replica") as s1,
                TcpEndpoint.open() as reader):
        st0, st1 = s0.node.state, s1.node.state
        assert st0 is not None
        assert st1 is not None
        for fl_id in uploads:
            assert parse_response_fl_job(await s0.start_fl_job(fl_id)).retcode == 200
        bodies = {fl_id: rq.build_request_update_model(fl_name, fl_id, 1, [(n, v.reshape(-1)) for n, v in w.items()],
                                                       "2020/11/16/19/18") for fl_id, w in uploads.items()}
        # Execute: two updates on s0, no checkpoint meanwhile (the periodic one waits for the server's own lock)
        async with st0.checkpoint_lock:
            for fl_id in ("d0", "d1"):
                answer = parse_response_update_model(await s0.post("updateModel", bodies[fl_id]))
                assert answer.retcode == 200, answer.reason
            # Assert: s0's log in Redis names s1 for each, s1 holds the bodies byte for
            # byte, and any server can read them back over the transport
            durable = DurableUpdates(st0.store, st0.instance, 1, st0.ttl)
            logged = await durable.read(st0.node_id)
            assert sorted(logged.logged) == ["d0", "d1"]
            names = {fl_id: copy_of(value) for fl_id, value in logged.logged.items()}
            key = (st0.instance, 1, st0.node_id)
            for fl_id, named in names.items():
                assert named is not None
                assert named[0] == st1.node_id
                held = st1.replicas.get(key, named[1])
                assert held is not None
                assert held.tobytes() == bodies[fl_id]
                copy = await fetch_copy(reader, st1.tcp_address, key, named[1])
                assert copy is not None
                assert copy.tobytes() == bodies[fl_id]
            assert await fetch_copy(reader, st1.tcp_address, key, "no-such-copy") is None
            # d0 again (a retry after a lost answer): refused as a duplicate, and the accepted copy stays
            again = parse_response_update_model(await s0.post("updateModel", bodies["d0"]))
            assert again.retcode != 200
            d0 = names["d0"]
            assert d0 is not None
            assert st1.replicas.get(key, d0[1]) is not None
            assert (await durable.read(st0.node_id)).logged == logged.logged
            async with s1.session.get(s1.url + "metrics") as resp:
                held_line = next(line for line in (await resp.text()).splitlines()
                                 if line.startswith("mindfed_server_replica_held_bytes "))
            assert float(held_line.split()[1]) == st1.replicas.nbytes == len(bodies["d0"]) + len(bodies["d1"])
        # a checkpoint goes to the holder too: Redis keeps its marker, the holder drops the bodies it covers
        assert await checkpoint_once(st0) == (1, 2)
        logged = await durable.read(st0.node_id)
        assert logged.logged == {}
        assert logged.checkpoint is not None
        named = checkpoint_of(logged.checkpoint)
        assert named is not None
        assert named[0] == st1.node_id
        assert st1.replicas.get(key, d0[1]) is None
        blob = await fetch_copy(reader, st1.tcp_address, key, checkpoint=named[1])
        assert blob is not None
        assert sorted(PartialSums.decode(blob).tags) == ["d0", "d1"]
        assert st1.replicas.nbytes == blob.nbytes
        # the third update, on s1, ends the iteration with the exact sum; the ended iteration's copies are gone
        assert parse_response_update_model(await s1.post("updateModel", bodies["d2"])).retcode == 200
        served = await s0.wait_model(1)
        await s1.wait_iteration(2)
        assert st1.replicas.nbytes == 0
    for tensor in served.feature_map:
        if tensor.name in uploads["d0"]:
            expect = sum(w[tensor.name].astype(np.float64) for w in uploads.values()) / 3
            np.testing.assert_allclose(np.asarray(tensor.data), expect.reshape(-1), rtol=1e-5, atol=1e-6)


async def test_update_log_replica_without_a_holding_peer_logs_the_body_in_redis(redis_address: str, fl_name: str,
                                                                                 tmp_path: Path) -> None:
    # A peer that is not in replica mode refuses to hold copies: the body goes into Redis as with update_log on
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    update = {n: np.ones(model[n].shape, np.float32) for n in model.aggregated_names}
    async with (running_server(cfg, model, tmp_path / "s0", update_log="replica") as s0,
                running_server(cfg, model, tmp_path / "s1") as s1):
        st0 = s0.node.state
        assert st0 is not None
        assert s1.node.state is not None
        assert parse_response_fl_job(await s0.start_fl_job("d0")).retcode == 200
        body = rq.build_request_update_model(fl_name, "d0", 1, [(n, v.reshape(-1)) for n, v in update.items()],
                                             "2020/11/16/19/18")
        assert parse_response_update_model(await s0.post("updateModel", body)).retcode == 200
        logged = await DurableUpdates(st0.store, st0.instance, 1, st0.ttl).read(st0.node_id)
        checkpointed = PartialSums.decode(logged.checkpoint).tags if logged.checkpoint else []
        assert logged.logged == {"d0": body} or (not logged.logged and checkpointed == ["d0"])
        assert s1.node.state.replicas.nbytes == 0


async def test_update_log_replica_hands_a_stopped_servers_checkpoint_over_through_its_holder(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: s0 and s1 in replica mode, hand_over on stop; s0 takes two updates, then stops: its last checkpoint
    # goes to its holder s1, and Redis keeps only a marker of it
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3})
    options = {"update_log": "replica", "stop_fails_iteration": False}
    weights = {"d0": 2.0, "d1": 4.0, "d2": 9.0}
    stopping = running_server(cfg, model, tmp_path / "s0", **options)
    s0 = await stopping.__aenter__()
    try:
        async with running_server(cfg, model, tmp_path / "s1", **options) as s1:
            for fl_id in weights:
                assert parse_response_fl_job(await s0.start_fl_job(fl_id)).retcode == 200
            for fl_id in ("d0", "d1"):
                update = {n: np.full(model[n].shape, weights[fl_id], np.float32) for n in model.aggregated_names}
                assert parse_response_update_model(await s0.update_model(fl_id, 1, update)).retcode == 200
            st0, st1 = s0.node.state, s1.node.state
            assert st0 is not None
            assert st1 is not None
            durable = DurableUpdates(st1.store, st1.instance, 1, st1.ttl)  # s1's client: s0's closes with it
            origin = st0.node_id
            await stopping.__aexit__(None, None, None)
            stopping = None
            stored = await durable.read(origin)
            assert stored.checkpoint is not None
            assert checkpoint_of(stored.checkpoint) is not None  # the marker, not the blob
            # Execute: the third update on s1 completes the iteration; s1 reads s0's checkpoint from its own store
            update = {n: np.full(model[n].shape, weights["d2"], np.float32) for n in model.aggregated_names}
            assert parse_response_update_model(await s1.update_model("d2", 1, update)).retcode == 200
            served = await s1.wait_model(1)
    finally:
        if stopping is not None:
            await stopping.__aexit__(None, None, None)
    # Assert: (2 + 4 + 9) / 3 = 5
    for tensor in served.feature_map:
        if tensor.name in model.aggregated_names:
            np.testing.assert_allclose(np.asarray(tensor.data), 5.0, rtol=1e-6)


async def test_update_log_replica_checkpoints_into_redis_once_its_holder_has_left(redis_address: str, fl_name: str,
                                                                                  tmp_path: Path) -> None:
    # Prepare: s0 and s1 in replica mode; an update on s0, held by s1
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    update = {n: np.ones(model[n].shape, np.float32) for n in model.aggregated_names}
    async with running_server(cfg, model, tmp_path / "s0", update_log="replica") as s0:
        st0 = s0.node.state
        assert st0 is not None
        durable = DurableUpdates(st0.store, st0.instance, 1, st0.ttl)
        async with running_server(cfg, model, tmp_path / "s1", update_log="replica") as s1:
            assert s1.node.state is not None
            holder = s1.node.state.node_id
            assert parse_response_fl_job(await s0.start_fl_job("d0")).retcode == 200
            assert parse_response_update_model(await s0.update_model("d0", 1, update)).retcode == 200
            for _ in range(40):  # the periodic checkpoint (once a second) takes it, to the holder
                stored = await durable.read(st0.node_id)
                if stored.checkpoint is not None:
                    break
                await asyncio.sleep(0.1)
            assert stored.checkpoint is not None
            assert checkpoint_of(stored.checkpoint) is not None  # held by s1
        # Execute: s1 stops (and unregisters); nothing new is folded on s0
        # Assert: within a few checkpoint periods s0's update no longer depends on s1: a blob in Redis, no marker
        for _ in range(60):
            stored = await durable.read(st0.node_id)
            if stored.checkpoint is not None and checkpoint_of(stored.checkpoint) is None and not stored.logged:
                break
            await asyncio.sleep(0.1)
        assert stored.checkpoint is not None
        assert checkpoint_of(stored.checkpoint) is None, "the checkpoint still names the holder that left"
        assert PartialSums.decode(stored.checkpoint).tags == ["d0"]
        assert all(copy_of(value) is None for value in stored.logged.values())
        assert holder not in str(stored.logged)
