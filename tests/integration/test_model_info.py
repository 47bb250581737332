"""Servers of one job must share the model layout (spec §13): MindSpore's four refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.config import FLConfig
from mindfed.errors import ConfigError
from mindfed.model.weights import ModelWeights
from mindfed.server.node import ServerNode, ServerOptions

pytestmark = pytest.mark.integration


async def start_other(cfg: FLConfig, model: ModelWeights, tmp_path: Path) -> None:
    node = ServerNode(cfg, model, ServerOptions(http_server_address="127.0.0.1:0", checkpoint_dir=None,
                                                output_dir=tmp_path, cache_wait_s=5.0))
    try:
        await node.start()
    finally:
        await node.stop()


BASE = {"feature_conv": (2, 3), "feature_bn": (1,), "feature_bn2": (1,), "feature_conv2": (2, 3)}


def model_like(shapes: dict[str, tuple[int, ...]], aggregate_conv2: bool = False) -> ModelWeights:
    flags = {"feature_conv2": aggregate_conv2} if "feature_conv2" in shapes else {}
    return ModelWeights({name: np.zeros(shape) for name, shape in shapes.items()}, require_aggr=flags)


@pytest.mark.parametrize(("other", "message"), [
    (model_like({"feature_conv": (2, 3), "feature_bn": (1,), "feature_bn2": (1,), "feature_other": (1,)}),
     "The features are inconsistent with that declared in distributed cache: cannot find feature feature_other"),
    (model_like({"feature_conv": (2, 3), "feature_bn": (1,)}),
     "The number 2 of local features != the number 4 declared in the the distributed cache"),
    (model_like({**BASE, "extra": (2,)}),
     "The number 5 of local features != the number 4 declared in the the distributed cache"),
    (model_like(BASE, aggregate_conv2=True), "The feature require_aggr 1 of local != that 0"),
    (model_like({**BASE, "feature_conv": (4, 3)}), "The feature size 48 of local != that 24"),
])
async def test_a_server_with_another_model_refuses_to_start(redis_address: str, fl_name: str, tmp_path: Path,
                                                            other: ModelWeights, message: str) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_server(cfg, ut_model(), tmp_path / "a"):
        with pytest.raises(ConfigError, match=message):
            await start_other(cfg, other, tmp_path / "b")


async def test_a_server_with_the_same_layout_joins(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_server(cfg, ut_model(), tmp_path / "a"), running_server(cfg, model_like(BASE), tmp_path / "b"):
        pass
