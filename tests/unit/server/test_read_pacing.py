"""The receive buffer every device connection inherits from the listening socket (server/read_pacing.py)."""

from __future__ import annotations

import socket

import pytest

from mindfed.config.schema_round import ClientConfig
from mindfed.errors import ConfigError
from mindfed.server.read_pacing import AIOHTTP_READ_BUFSIZE, BOUNDED_READ_BUFSIZE, bound_receive_buffer, read_bufsize


def test_the_small_read_buffer_comes_only_with_a_bounded_kernel_buffer() -> None:
    assert read_bufsize(0) == AIOHTTP_READ_BUFSIZE
    assert read_bufsize(16384) == BOUNDED_READ_BUFSIZE


def accepted_rcvbuf(size: int) -> int:
    with socket.socket() as listener, socket.socket() as device:
        bound_receive_buffer(listener, size)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        device.connect(listener.getsockname())
        accepted, _ = listener.accept()
        with accepted:
            return accepted.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def test_an_accepted_connection_has_the_listeners_buffer() -> None:
    # Linux doubles SO_RCVBUF for its bookkeeping, and reports the doubled size
    assert accepted_rcvbuf(16384) == 2 * 16384
    with socket.socket() as plain:
        default = plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert accepted_rcvbuf(0) >= default  # 0: the kernel's own buffer (autotuning may have grown it already)


@pytest.mark.parametrize("value", [1, 4095, 16 * 1024 * 1024 + 1, -1])
def test_a_receive_buffer_outside_its_range_is_a_config_error(value: int) -> None:
    with pytest.raises(ConfigError, match="client.receive_buffer_bytes"):
        ClientConfig(receive_buffer_bytes=value)


def test_zero_and_values_in_range_are_accepted() -> None:
    assert ClientConfig().receive_buffer_bytes == 0
    assert ClientConfig(receive_buffer_bytes=4096).receive_buffer_bytes == 4096
