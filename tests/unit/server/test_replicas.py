"""The bookkeeping of update_log replica (server/replicas.py): markers, the copies a holder keeps, who holds next."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from mindfed.net.endpoint import TcpEndpoint
from mindfed.protocol import request_builders as rq
from mindfed.protocol.requests import parse_request_update_model
from mindfed.server.replicas import ReplicaStore, Replicator, checkpoint_marker, checkpoint_of, copy_of, marker


def test_a_marker_names_its_holder_and_a_real_body_is_never_taken_for_one() -> None:
    # Prepare: a marker, and a real updateModel body
    node = "127.0.0.1:6000::2026-12-04-05:00:00.000.000::12345"
    body = rq.build_request_update_model("job", "dev1", 1, [("w", np.ones(4, np.float32))], "1")
    # Execute / Assert
    assert copy_of(marker(node, "c1")) == (node, "c1")
    assert copy_of(memoryview(bytearray(marker(node, "c1")))) == (node, "c1")
    assert checkpoint_of(checkpoint_marker(node, 7)) == (node, 7)
    assert copy_of(checkpoint_marker(node, 7)) is None  # the two kinds never read as each other
    assert checkpoint_of(marker(node, "c1")) is None
    assert copy_of(body) is None
    assert checkpoint_of(body) is None
    with pytest.raises(Exception):  # noqa: B017, PT011 - any parse failure: a marker is no FlatBuffer
        parse_request_update_model(marker(node, "c1"))


def test_the_store_keeps_trims_and_forgets_ended_iterations() -> None:
    # Prepare
    store = ReplicaStore()
    a, b = np.arange(10, dtype=np.uint8), np.arange(20, dtype=np.uint8)
    store.put(("i1", 3, "o1"), "d1", a)
    store.put(("i1", 3, "o1"), "d2", b)
    store.put(("i1", 4, "o2"), "d3", b)
    store.put(("i0", 9, "o1"), "d4", a)
    # Execute / Assert: get, trim, then only the current instance's iterations from 4 on stay
    got = store.get(("i1", 3, "o1"), "d1")
    assert got is not None
    assert got is a
    assert store.get(("i1", 3, "o2"), "d1") is None
    assert store.nbytes == 10 + 20 + 20 + 10
    store.trim(("i1", 3, "o1"), ["d1", "unknown"])
    assert store.get(("i1", 3, "o1"), "d1") is None
    assert store.nbytes == 20 + 20 + 10
    store.keep_only("i1", 4)
    assert store.nbytes == 20
    assert store.get(("i1", 4, "o2"), "d3") is b


def members_of(members: dict[str, str]) -> Callable[[], Awaitable[dict[str, str]]]:
    """A members lookup answering `members` (what `store.alive_servers` answers a server)."""

    async def fetch() -> dict[str, str]:
        return members

    return fetch


async def test_the_holder_is_the_next_server_in_node_order_and_a_failed_one_is_passed_over() -> None:
    async with TcpEndpoint.open() as endpoint:
        members = {"b": "h:2", "a": "h:1", "d": "h:4", "c": "h:3"}
        with_dead_c = members_of({"b": "h:2", "c": "127.0.0.1:1"})  # nothing listens on port 1
        replicator = Replicator(endpoint, "b", "h:2", 1 << 20, with_dead_c)
        assert replicator._holder(members) == ("c", "h:3")  # noqa: SLF001 - the choice itself is under test
        assert Replicator(endpoint, "d", "h:4", 1 << 20, with_dead_c)._holder(members) == ("a", "h:1")  # noqa: SLF001
        assert Replicator(endpoint, "a", "h:1", 1 << 20, with_dead_c)._holder({"a": "h:1"}) is None  # noqa: SLF001
        # Execute: a copy to a holder that is not there fails; it is passed over for the next copies
        body = b"x" * 100
        assert await replicator.replicate("i", 1, "d1", body) is None
        assert replicator.failed
        assert replicator.checkpoint_wanted.is_set()  # what that holder kept must be covered by Redis again
        assert replicator._holder(members) == ("d", "h:4")  # noqa: SLF001
        assert not replicator._outgoing  # noqa: SLF001 - nothing left waiting to be fetched
