"""The receive buffer every device connection inherits from the listening socket (server/read_pacing.py)."""

from __future__ import annotations

import socket

from mindfed.config.enums import ServerMode
from mindfed.server.read_pacing import DEVICE_RCVBUF_BYTES, bound_receive_buffer, device_rcvbuf_bytes


def test_device_servers_bound_the_buffer_cloud_training_keeps_autotuning() -> None:
    assert device_rcvbuf_bytes(ServerMode.FEDERATED_LEARNING) == DEVICE_RCVBUF_BYTES
    assert device_rcvbuf_bytes(ServerMode.HYBRID_TRAINING) == DEVICE_RCVBUF_BYTES
    assert device_rcvbuf_bytes(ServerMode.CLOUD_TRAINING) is None


def test_an_accepted_connection_has_the_listeners_buffer() -> None:
    with socket.socket() as listener, socket.socket() as device:
        bound_receive_buffer(listener, DEVICE_RCVBUF_BYTES)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        device.connect(listener.getsockname())
        accepted, _ = listener.accept()
        with accepted:
            # Linux doubles SO_RCVBUF for its bookkeeping, and reports the doubled size
            assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * DEVICE_RCVBUF_BYTES
