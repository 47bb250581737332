"""IterationAccumulator: exact sums, grouping, partial uploads, backpressure, life cycle."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mindfed.aggregation import IterationAccumulator

SIZES = {"conv.weight": 3 * 2048 + 7, "fc.bias": 10}


def _update(rng: np.random.Generator, names: list[str] | None = None) -> dict[str, np.ndarray]:
    chosen = names if names is not None else list(SIZES)
    return {name: rng.uniform(0.5, 1.5, SIZES[name]).astype(np.float32) for name in chosen}


def _frombuffer_unaligned(array: np.ndarray, offset: int) -> np.ndarray:
    """A read-only view at an odd offset of an immutable body, like a FlatBuffers request."""
    body = b"\x07" * offset + array.tobytes()
    return np.frombuffer(body, dtype=np.float32, count=array.size, offset=offset)


async def test_finalize_equals_float64_weighted_average() -> None:
    # Prepare
    rng = np.random.default_rng(1)
    acc = IterationAccumulator(SIZES)
    clients = [(_update(rng), int(rng.integers(1, 100)), float(rng.uniform(0.5, 2))) for _ in range(20)]
    # Execute
    await asyncio.gather(*(acc.add(u, n, w) for u, n, w in clients))
    result = acc.finalize()
    # Assert
    total = sum(n for _, n, _ in clients)
    assert acc.data_sizes == dict.fromkeys(SIZES, total)
    for name in SIZES:
        expected = sum(w * u[name].astype(np.float64) for u, _, w in clients) / total
        got = result[name]
        assert got is not None
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5)


async def test_concurrent_adds_are_folded_in_groups() -> None:
    # Prepare
    rng = np.random.default_rng(2)
    acc = IterationAccumulator(SIZES, max_group=8, max_pending=16)
    updates = [_update(rng) for _ in range(64)]
    # Execute
    await asyncio.gather(*(acc.add(u, 1) for u in updates))
    # Assert
    stats = acc.stats
    assert stats.updates_folded == 64
    assert stats.fold_passes < 64  # one update per pass means no grouping happened
    assert stats.fold_passes >= 64 // 8
    expected = np.sum([u["conv.weight"].astype(np.float64) for u in updates], axis=0)
    sums, data_sizes = await acc.snapshot()
    np.testing.assert_allclose(sums["conv.weight"], expected, rtol=1e-5)
    assert data_sizes == dict.fromkeys(SIZES, 64)


async def test_partial_uploads_sum_per_name_and_unsent_names_finalize_to_none() -> None:
    # Prepare
    sizes = {**SIZES, "head.weight": 5}
    rng = np.random.default_rng(3)
    acc = IterationAccumulator(sizes, max_group=4)
    full, partial = _update(rng), _update(rng, ["fc.bias"])
    # Execute
    await asyncio.gather(acc.add(full, 30), acc.add(partial, 10))
    result = acc.finalize()
    # Assert
    assert acc.data_sizes == {"conv.weight": 30, "fc.bias": 40, "head.weight": 0}
    assert result["head.weight"] is None
    np.testing.assert_allclose(result["conv.weight"], full["conv.weight"] / 30, rtol=1e-5)
    expected_bias = (full["fc.bias"].astype(np.float64) + partial["fc.bias"]) / 40
    np.testing.assert_allclose(result["fc.bias"], expected_bias, rtol=1e-5)


async def test_unaligned_read_only_views_are_accepted() -> None:
    # Prepare
    rng = np.random.default_rng(4)
    acc = IterationAccumulator(SIZES)
    originals = [_update(rng) for _ in range(3)]
    views = [{name: _frombuffer_unaligned(a, 1 + i) for name, a in u.items()} for i, u in enumerate(originals)]
    assert not views[0]["conv.weight"].flags.aligned
    # Execute
    await asyncio.gather(*(acc.add(v, 1) for v in views))
    # Assert
    sums, _ = await acc.snapshot()
    expected = np.sum([u["conv.weight"].astype(np.float64) for u in originals], axis=0)
    np.testing.assert_allclose(sums["conv.weight"], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [np.ones(10, np.float64), np.ones(20, np.float32)[::2], [1.0] * 10],
    ids=["float64", "strided", "list"],
)
async def test_wrong_array_type_raises_type_error_and_changes_nothing(bad: object) -> None:
    acc = IterationAccumulator(SIZES)
    with pytest.raises(TypeError, match="fc.bias"):
        await acc.add({"fc.bias": bad}, 5)  # type: ignore[dict-item]
    assert acc.pending == 0
    assert acc.data_sizes == dict.fromkeys(SIZES, 0)


async def test_wrong_size_or_unknown_name_raises_value_error() -> None:
    acc = IterationAccumulator(SIZES)
    with pytest.raises(ValueError, match="has 9 elements, expected 10"):
        await acc.add({"fc.bias": np.ones(9, np.float32)}, 1)
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        await acc.add({"nope": np.ones(9, np.float32)}, 1)
    with pytest.raises(ValueError, match="no parameter"):
        await acc.add({}, 1)
    assert acc.finalize() == dict.fromkeys(SIZES, None)


async def test_backpressure_bounds_updates_in_flight() -> None:
    # Prepare
    acc = IterationAccumulator({"w": 50_000}, max_group=2, max_pending=4)
    update = {"w": np.ones(50_000, np.float32)}
    seen: list[int] = []
    adds = [asyncio.create_task(acc.add(update, 1)) for _ in range(100)]

    async def sample_until_done() -> None:
        while not all(task.done() for task in adds):
            seen.append(acc.pending)
            await asyncio.sleep(0)

    # Execute
    await asyncio.gather(sample_until_done(), *adds)
    # Assert
    assert max(seen) == 4
    assert acc.stats.peak_pending == 4
    assert acc.pending == 0
    assert acc.data_sizes == {"w": 100}
    np.testing.assert_array_equal(acc.finalize()["w"], 1.0)


async def test_add_returns_only_after_its_update_is_folded() -> None:
    acc = IterationAccumulator({"w": 4})
    await acc.add({"w": np.full(4, 6.0, np.float32)}, 3)
    assert acc.pending == 0
    result = acc.finalize()["w"]
    assert result is not None
    np.testing.assert_array_equal(result, 2.0)


async def test_finalize_and_reset_refuse_while_updates_are_folding() -> None:
    # Prepare
    acc = IterationAccumulator({"w": 1000})
    task = asyncio.create_task(acc.add({"w": np.ones(1000, np.float32)}, 1))
    await asyncio.sleep(0)  # let add() be admitted
    # Execute / Assert
    assert acc.pending == 1
    with pytest.raises(RuntimeError, match="still being folded"):
        acc.finalize()
    with pytest.raises(RuntimeError, match="still being folded"):
        acc.reset()
    await task
    assert acc.finalize()["w"] is not None


async def test_reset_zeroes_sums_for_the_next_iteration() -> None:
    # Prepare
    acc = IterationAccumulator({"w": 8})
    await acc.add({"w": np.full(8, 5.0, np.float32)}, 1)
    # Execute
    acc.reset()
    await acc.add({"w": np.full(8, 2.0, np.float32)}, 2)
    # Assert
    assert acc.data_sizes == {"w": 2}
    np.testing.assert_array_equal(acc.finalize()["w"], 1.0)


async def test_lend_hands_out_the_live_sums_and_freezes_them_until_reset() -> None:
    # Prepare
    acc = IterationAccumulator({"w": 8})
    await acc.add({"w": np.full(8, 5.0, np.float32)}, 1, tag="a")
    # Execute
    sums, data_sizes, tags = await acc.lend()
    again, _, _ = await acc.lend()
    # Assert: the arrays themselves (no copy), and no fold may change them any more
    assert acc.lent
    assert again["w"] is sums["w"]
    assert (data_sizes, tags) == ({"w": 1}, ["a"])
    with pytest.raises(RuntimeError, match="lent to the aggregator"):
        await acc.add({"w": np.ones(8, np.float32)}, 1, tag="late")
    np.testing.assert_array_equal(sums["w"], 5.0)
    assert acc.tags == ["a"]
    assert acc.pending == 0
    # the next iteration folds into new arrays: what was lent stays as it was for whoever still holds it
    acc.reset()
    await acc.add({"w": np.full(8, 2.0, np.float32)}, 2)
    assert not acc.lent
    np.testing.assert_array_equal(sums["w"], 5.0)
    np.testing.assert_array_equal(acc.finalize()["w"], 1.0)


async def test_lend_waits_for_the_fold_in_progress() -> None:
    acc = IterationAccumulator({"w": 1000})
    task = asyncio.create_task(acc.add({"w": np.ones(1000, np.float32)}, 1))
    await asyncio.sleep(0)  # admitted and being folded
    assert acc.pending == 1
    lending = asyncio.create_task(acc.lend())
    await task
    # lend takes the fold lock after the fold, so the sums and the tags describe the same updates
    sums, data_sizes, _ = await lending
    assert data_sizes == {"w": 1}
    np.testing.assert_array_equal(sums["w"], 1.0)


async def test_snapshot_is_a_consistent_copy_taken_between_folds() -> None:
    # Prepare: each client sends data_size * ones, so a consistent snapshot has sum == data size.
    acc = IterationAccumulator({"w": 20_000}, max_group=3, max_pending=6)
    adds = [asyncio.create_task(acc.add({"w": np.full(20_000, n, np.float32)}, n)) for n in range(1, 31)]
    # Execute
    snapshots = []
    while not all(task.done() for task in adds):
        snapshots.append(await acc.snapshot())
    await asyncio.gather(*adds)
    snapshots.append(await acc.snapshot())
    # Assert
    for sums, data_sizes in snapshots:
        np.testing.assert_array_equal(sums["w"], float(data_sizes["w"]))
    final_sums, final_sizes = snapshots[-1]
    assert final_sizes == {"w": sum(range(1, 31))}
    final_sums["w"][:] = -1.0  # a copy: the accumulator must not change
    again, _ = await acc.snapshot()
    np.testing.assert_array_equal(again["w"], float(sum(range(1, 31))))


def test_invalid_limits_raise_value_error() -> None:
    with pytest.raises(ValueError, match="max_group"):
        IterationAccumulator({"w": 1}, max_group=0)
    with pytest.raises(ValueError, match="negative size"):
        IterationAccumulator({"w": -1})
