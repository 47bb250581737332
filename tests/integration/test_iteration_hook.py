"""ServerOptions.on_iteration_end: called once per iteration on the server that writes the summary."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np
import pytest
from tests.integration.cluster import Server, ut_config, ut_model

from mindfed.server.node import ServerNode, ServerOptions
from mindfed.server.summary import IterationEnd

pytestmark = pytest.mark.integration


async def test_hook_sees_every_iteration_with_its_model_and_checkpoint(redis_address: str, fl_name: str,
                                                                       tmp_path: Path) -> None:
    ends: list[IterationEnd] = []

    async def record(end: IterationEnd) -> None:
        ends.append(end)

    model = ut_model()
    node = ServerNode(ut_config(redis_address, fl_name, fl_iteration_num=2), model, ServerOptions(
        http_server_address="127.0.0.1:0", checkpoint_dir=str(tmp_path / "ckpt"), output_dir=tmp_path,
        tick_s=0.05, on_iteration_end=record))
    await node.start()
    try:
        async with aiohttp.ClientSession() as session:
            server = Server(node, session, fl_name)
            for it in (1, 2):
                await server.start_fl_job("d", data_size=2)
                await server.update_model("d", it, {"feature_bn": np.full(1, 2.0 * it, np.float32)})
                await server.wait_iteration(it + 1)
    finally:
        await node.stop()
    assert [(e.iteration_num, e.iteration_valid) for e in ends] == [(1, True), (2, True)]
    assert ends[-1].fl_name == fl_name
    assert ends[-1].instance_name == node.state.instance
    assert ends[-1].feature_map is not None
    np.testing.assert_allclose(ends[-1].feature_map["feature_bn"], [2.0])
    assert ends[-1].checkpoint_file is not None
    assert Path(ends[-1].checkpoint_file).exists()
