"""The models a server keeps: the newest three, and room made for a fourth before it is computed."""

from __future__ import annotations

import numpy as np

from mindfed.model.weights import ModelWeights
from mindfed.server.model_store import ModelStore


def _model(value: float) -> ModelWeights:
    return ModelWeights({"w": np.full(4, value, np.float32)})


def test_room_is_made_for_the_next_model_by_dropping_only_the_oldest() -> None:
    # Prepare: three models kept, an answer cached from them
    store = ModelStore(keep=3)
    store.reset(1, _model(1))
    store.put(2, _model(2))
    store.put(3, _model(3))
    cached = store.response("answer", lambda into: b"built")

    # Execute
    store.make_room()

    # Assert: the oldest is gone, the newest stays for the combine and the cached answer stays (it holds its own
    # bytes); the next put keeps three and empties the cache
    assert [store.get(i) is not None for i in (1, 2, 3)] == [False, True, True]
    assert store.latest_iteration == 3
    assert store.response("answer", lambda into: b"rebuilt") is cached
    store.put(4, _model(4))
    assert store.response("answer", lambda into: b"rebuilt") is not cached
    assert [store.get(i) is not None for i in (2, 3, 4)] == [True, True, True]


def test_room_is_not_made_while_the_store_is_not_full_nor_from_the_newest() -> None:
    store = ModelStore(keep=3)
    store.reset(1, _model(1))
    store.put(2, _model(2))
    store.make_room()
    assert store.get(1) is not None
    single = ModelStore(keep=1)
    single.reset(5, _model(5))
    single.make_room()
    assert single.latest_iteration == 5
