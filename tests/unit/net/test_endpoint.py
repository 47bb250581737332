"""TcpEndpoint over two real nodes on 127.0.0.1: request/response, big payloads, deadlines, failures."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from mindfed.errors import NetworkError
from mindfed.net import Frame, Payload, TcpEndpoint

ECHO = 1
SILENT = 2
FAIL = 3
HOLD = 4


@pytest.fixture
async def endpoints() -> AsyncIterator[Callable[..., TcpEndpoint]]:
    """Factory of endpoints on 127.0.0.1:0; each is closed at teardown."""
    made: list[TcpEndpoint] = []

    def make(**kwargs: int) -> TcpEndpoint:
        made.append(TcpEndpoint.open("127.0.0.1", 0, **kwargs))
        return made[-1]

    yield make
    for endpoint in made:
        await endpoint.aclose()


async def answer(frame: Frame) -> Payload | None:
    """ECHO: the payload back (small ones reversed); SILENT: no answer; HOLD: waits forever; FAIL: raises."""
    if frame.type == ECHO:
        return frame.payload[::-1].copy() if frame.payload.size < 4096 else frame.payload
    if frame.type == FAIL:
        raise RuntimeError("handler broke")
    if frame.type == HOLD:
        await asyncio.Event().wait()
    return None


def address(endpoint: TcpEndpoint) -> str:
    return f"127.0.0.1:{endpoint.port}"


async def test_request_gets_the_matching_response(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare
    server, client = endpoints(), endpoints()
    server.on_request(answer)
    # Execute
    response = await client.request(address(server), ECHO, b"hello", timeout_s=5)
    # Assert
    assert response.payload.tobytes() == b"olleh"
    assert response.type == ECHO
    assert response.peer == address(server)


@pytest.mark.slow
async def test_256_mib_round_trip_arrives_intact(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare
    server, client = endpoints(), endpoints()
    server.on_request(answer)
    payload = np.random.default_rng(7).integers(0, 256, 256 << 20, dtype=np.uint8)
    want = hashlib.sha256(payload).hexdigest()
    # Execute
    response = await client.request(address(server), ECHO, payload, timeout_s=30)
    # Assert
    assert response.payload.nbytes == payload.nbytes
    assert hashlib.sha256(response.payload).hexdigest() == want
    assert response.payload.flags.writeable
    assert client._node._held_count() == 0  # the borrowed payload was handed back


async def test_many_concurrent_requests_each_get_their_own_answer(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare
    server, clients = endpoints(), [endpoints() for _ in range(4)]
    server.on_request(answer)
    bodies = [f"request {i}".encode() * (1 + i % 7) for i in range(800)]
    # Execute
    responses = await asyncio.gather(
        *(clients[i % 4].request(address(server), ECHO, body, timeout_s=10) for i, body in enumerate(bodies))
    )
    # Assert
    assert [r.payload.tobytes() for r in responses] == [b[::-1] for b in bodies]


async def test_request_fails_at_deadline_when_peer_never_answers(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare
    server, client = endpoints(), endpoints()
    server.on_request(answer)
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Execute / Assert
    with pytest.raises(NetworkError, match=r"within 0.2 s"):
        await client.request(address(server), SILENT, b"x", timeout_s=0.2)
    assert 0.15 < loop.time() - start < 2


async def test_pending_requests_fail_when_peer_closes(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare: five requests the server holds without answering
    server, client = endpoints(), endpoints()
    server.on_request(answer)
    pending = [asyncio.ensure_future(client.request(address(server), HOLD, b"x", timeout_s=30)) for _ in range(5)]
    for _ in range(500):
        if len(server._tasks) == 5:
            break
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Execute
    await server.aclose()
    results = await asyncio.gather(*pending, return_exceptions=True)
    # Assert
    assert all(isinstance(r, NetworkError) for r in results), results
    assert "closed the connection" in str(results[0])
    assert loop.time() - start < 5


async def test_request_to_nobody_fails_with_network_error(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare: a port that was free a moment ago
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = endpoints()
    # Execute / Assert
    with pytest.raises(NetworkError, match="Connection refused"):
        await client.request(f"127.0.0.1:{port}", ECHO, b"x", timeout_s=5)


async def test_handler_failure_reaches_requester(endpoints: Callable[..., TcpEndpoint]) -> None:
    server, client = endpoints(), endpoints()
    server.on_request(answer)
    with pytest.raises(NetworkError, match="RuntimeError: handler broke"):
        await client.request(address(server), FAIL, b"x", timeout_s=5)


async def test_connections_beyond_max_are_closed(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare
    server = endpoints(max_connections=2)
    server.on_request(answer)
    clients = [endpoints() for _ in range(3)]
    # Execute: two connections are accepted and stay open
    for c in clients[:2]:
        assert (await c.request(address(server), ECHO, b"ab", timeout_s=5)).payload.tobytes() == b"ba"
    # Assert: the third is closed at once
    with pytest.raises(NetworkError, match="closed the connection|reset"):
        await clients[2].request(address(server), ECHO, b"ab", timeout_s=5)
    # once one closes, there is room again (as soon as the server has seen the close)
    await clients[0].aclose()
    for _ in range(100):
        await asyncio.sleep(0.02)
        with contextlib.suppress(NetworkError):
            assert (await clients[2].request(address(server), ECHO, b"cd", timeout_s=5)).payload.tobytes() == b"dc"
            break
    else:
        pytest.fail("no room for a new connection after one closed")


async def test_garbage_from_a_peer_closes_only_that_connection(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare
    server, client = endpoints(), endpoints()
    server.on_request(answer)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # Execute
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    eof = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    # Assert
    assert eof == b""
    assert (await client.request(address(server), ECHO, b"ok", timeout_s=5)).payload.tobytes() == b"ko"


async def test_reply_frames_go_back_on_the_request_connection(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare: no handler, so the server takes requests from its inbox and replies itself
    server, client = endpoints(), endpoints()
    task = asyncio.ensure_future(client.request(address(server), 9, b"q", timeout_s=5))
    frame = await asyncio.wait_for(server.inbox.get(), 5)
    # Execute
    server.reply(frame, b"answer")
    # Assert
    assert (await task).payload.tobytes() == b"answer"


async def test_close_with_frames_pending_is_prompt_and_fails_requests(endpoints: Callable[..., TcpEndpoint]) -> None:
    # Prepare: inbound frames nobody took, and a big outbound payload in flight
    server, client = endpoints(), endpoints()
    for _ in range(10):
        client.send(address(server), 4, b"unread")
    big = np.zeros(64 << 20, np.uint8)
    task = asyncio.ensure_future(client.request(address(server), SILENT, big, timeout_s=30))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Execute
    await client.aclose()
    await server.aclose()
    # Assert
    with pytest.raises(NetworkError, match="endpoint closed"):
        await task
    assert loop.time() - start < 2
    assert client._node._held_count() == 0
    with pytest.raises(NetworkError, match="closed"):
        await client.request(address(server), ECHO, b"x", timeout_s=1)


async def test_freed_payload_buffer_is_reused_for_next_frame_of_same_size(
    endpoints: Callable[..., TcpEndpoint],
) -> None:
    # Prepare
    server, client = endpoints(), endpoints()
    payload = np.arange(4 << 20, dtype=np.uint32).view(np.uint8)
    client.send(address(server), 4, payload)
    first = await asyncio.wait_for(server.inbox.get(), 5)
    first_address = first.payload.__array_interface__["data"][0]
    del first  # the array's owner goes back to the node's cache
    # Execute
    client.send(address(server), 4, payload[::-1].copy())
    second = await asyncio.wait_for(server.inbox.get(), 5)
    # Assert
    assert second.payload.__array_interface__["data"][0] == first_address
    assert np.array_equal(second.payload, payload[::-1])
