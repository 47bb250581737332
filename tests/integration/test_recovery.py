"""A restarted server resumes from its newest recovery checkpoint (spec §6.3, §13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.model.ckpt import write_ckpt
from mindfed.model.formats import load_weights
from mindfed.protocol.responses import parse_response_fl_job

pytestmark = pytest.mark.integration


async def test_restart_resumes_at_the_next_iteration(fl_name: str, tmp_path: Path) -> None:
    model, ckpt_dir = ut_model(), tmp_path / "fl_ckpt"
    with EmbeddedRedis() as redis:
        cfg = ut_config(redis.address, fl_name)
        async with running_server(cfg, model, tmp_path, checkpoint_dir=ckpt_dir) as server:
            for it in (1, 2, 3):
                await server.start_fl_job("d", data_size=1)
                await server.update_model("d", it, {n: np.full(model[n].shape, it, np.float32)
                                                    for n in model.aggregated_names})
                await server.wait_iteration(it + 1)
    assert sorted(p.name.split("_")[3] for p in ckpt_dir.iterdir()) == ["1", "2", "3"]
    with EmbeddedRedis() as redis:  # the cluster's Redis is gone too: only the checkpoint remains
        cfg = ut_config(redis.address, fl_name)
        async with running_server(cfg, model, tmp_path, checkpoint_dir=ckpt_dir) as server:
            job = parse_response_fl_job(await server.start_fl_job("d"))
            assert (job.retcode, job.iteration) == (200, 4)
            weights = {t.name: np.asarray(t.data) for t in job.feature_map}
            np.testing.assert_allclose(weights["feature_bn"], [3.0])
            np.testing.assert_allclose(weights["feature_conv2"], model["feature_conv2"].reshape(-1), rtol=1e-6)
            assert (await server.wait_model(3)).retcode == 200


def _hand_written_ckpt(tensors: dict[str, np.ndarray]) -> bytes:
    """MindSpore's checkpoint.proto encoded by hand (spec §13), independent of our writer."""
    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    def ld(field: int, payload: bytes) -> bytes:
        return varint(field << 3 | 2) + varint(len(payload)) + payload

    blob = b""
    for name, array in tensors.items():
        tensor = b"".join(varint(1 << 3) + varint(d) for d in array.shape) + ld(2, b"Float32") + ld(
            3, array.astype("<f4").tobytes())
        blob += ld(1, ld(1, name.encode()) + ld(2, tensor))
    blob += ld(1, ld(1, b"global_step") + ld(2, varint(1 << 3) + varint(1) + ld(2, b"Int32") + ld(3, b"\x07\0\0\0")))
    return blob


async def test_server_starts_from_a_mindspore_ckpt(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    tensors = {"conv1.weight": rng.standard_normal((6, 1, 5, 5)).astype(np.float32),
               "fc3.bias": rng.standard_normal(10).astype(np.float32)}
    path = tmp_path / "Lenet.ckpt"
    path.write_bytes(_hand_written_ckpt(tensors))
    model = load_weights(path)
    assert sorted(model.names) == sorted(tensors)  # the Int32 global_step is skipped
    async with running_server(ut_config(redis_address, fl_name), model, tmp_path) as server:
        job = parse_response_fl_job(await server.start_fl_job("x"))
        got = {t.name: np.asarray(t.data) for t in job.feature_map}
        for name, value in tensors.items():
            np.testing.assert_array_equal(got[name], value.reshape(-1))
    write_ckpt(tmp_path / "ours.ckpt", tensors)
    assert (tmp_path / "ours.ckpt").read_bytes() == path.read_bytes()[: (tmp_path / "ours.ckpt").stat().st_size]


async def test_restart_after_the_last_iteration_is_finished(fl_name: str, tmp_path: Path) -> None:
    # MindSpore's checkpoint test: a restart after the final iteration serves reads only
    model, ckpt_dir = ut_model(), tmp_path / "fl_ckpt"
    with EmbeddedRedis() as redis:
        cfg = ut_config(redis.address, fl_name, fl_iteration_num=2)
        async with running_server(cfg, model, tmp_path, checkpoint_dir=ckpt_dir) as server:
            for it in (1, 2):
                await server.start_fl_job("d", data_size=1)
                await server.update_model("d", it, {"feature_bn": np.full(1, it, np.float32)})
                await server.wait_iteration(it + 1)
    with EmbeddedRedis() as redis:
        cfg = ut_config(redis.address, fl_name, fl_iteration_num=2)
        async with running_server(cfg, model, tmp_path, checkpoint_dir=ckpt_dir) as server:
            assert await server.start_fl_job("d") == b"The server's training job is disabled or finished."
            served = await server.wait_model(2)
            np.testing.assert_allclose(next(np.asarray(t.data) for t in served.feature_map if t.name == "feature_bn"),
                                       [2.0])
