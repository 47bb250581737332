"""AdmissionGate: bounded requests and body bytes inside, first come first served, cancellation gives places back."""

from __future__ import annotations

import asyncio

import pytest

from mindfed.server.admission import AdmissionGate


async def test_bounds_requests_and_bytes_in_arrival_order() -> None:
    gate = AdmissionGate(max_requests=3, max_bytes=100)
    order: list[int] = []
    peak = {"inside": 0, "bytes": 0}
    release = asyncio.Event()

    async def request(i: int, size: int) -> None:
        async with gate.enter(size):
            order.append(i)
            peak["inside"] = max(peak["inside"], gate.inside)
            peak["bytes"] = max(peak["bytes"], gate.inside_bytes)
            await release.wait()

    tasks = [asyncio.create_task(request(i, 40)) for i in range(10)]
    await asyncio.sleep(0.01)
    assert order == [0, 1]  # a third 40-byte body would pass 100 bytes
    assert gate.waiting == 8
    release.set()
    await asyncio.gather(*tasks)
    assert order == list(range(10))
    assert peak == {"inside": 2, "bytes": 80}
    assert gate.inside == gate.inside_bytes == gate.waiting == 0


async def test_a_body_larger_than_the_budget_gets_in_alone() -> None:
    gate = AdmissionGate(max_requests=4, max_bytes=10)
    async with gate.enter(1000):
        assert gate.inside == 1
    async with gate.enter(5):
        entered = asyncio.Event()

        async def big() -> None:
            async with gate.enter(1000):
                entered.set()

        task = asyncio.create_task(big())
        await asyncio.sleep(0.01)
        assert not entered.is_set()
    await task
    assert entered.is_set()
    assert gate.inside == 0


async def test_cancelled_waiters_leave_the_queue() -> None:
    gate = AdmissionGate(max_requests=1, max_bytes=100)
    done: list[int] = []

    async def request(i: int) -> None:
        async with gate.enter(1):
            done.append(i)
            await asyncio.sleep(0.01)

    async with gate.enter(1):
        tasks = [asyncio.create_task(request(i)) for i in range(5)]
        await asyncio.sleep(0.005)
        tasks[1].cancel()
        tasks[3].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert done == [0, 2, 4]
    assert gate.inside == gate.inside_bytes == gate.waiting == 0


def test_rejects_empty_bounds() -> None:
    with pytest.raises(ValueError, match="positive"):
        AdmissionGate(max_requests=0)
