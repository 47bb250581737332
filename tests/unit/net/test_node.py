"""_core.net.Node life cycle: threads joined on close and on drop, clean interpreter exit, bad arguments."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mindfed import _core
from mindfed.errors import NetworkError


def thread_count() -> int:
    return sum(1 for _ in Path("/proc/self/task").iterdir())


def test_close_joins_the_io_thread_and_is_idempotent() -> None:
    # Prepare
    before = thread_count()
    node = _core.net.Node("127.0.0.1")
    assert thread_count() == before + 1
    # Execute
    node.close()
    node.close()
    # Assert
    assert thread_count() == before
    assert node.take_ready() == []
    with pytest.raises(NetworkError, match="closed"):
        node.send("127.0.0.1:1", 1, 1, 0, b"x")


def test_dropping_last_reference_joins_the_io_thread() -> None:
    before = thread_count()
    node = _core.net.Node("127.0.0.1")
    del node
    gc.collect()
    assert thread_count() == before


def test_port_zero_gives_a_real_port_and_taken_port_fails() -> None:
    node = _core.net.Node("127.0.0.1", 0)
    try:
        assert node.port() > 0
        with pytest.raises(NetworkError, match="cannot bind"):
            _core.net.Node("127.0.0.1", node.port())
    finally:
        node.close()


@pytest.mark.parametrize("address", ["localhost:80", "127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000"])
def test_malformed_peer_address_is_a_value_error(address: str) -> None:
    node = _core.net.Node("127.0.0.1")
    try:
        with pytest.raises(ValueError, match="peer address"):
            node.send(address, 1, 1, 0, b"x")
    finally:
        node.close()


def test_strided_payload_is_rejected_not_copied() -> None:
    np = pytest.importorskip("numpy")
    node = _core.net.Node("127.0.0.1")
    try:
        with pytest.raises((ValueError, BufferError)):
            node.send("127.0.0.1:1", 1, 1, 0, np.zeros(100_000, np.uint8)[::2])
    finally:
        node.close()


def test_interpreter_exits_cleanly_with_nodes_running(tmp_path: Path) -> None:
    # Prepare: two nodes mid-conversation, a big payload in flight, never closed
    script = textwrap.dedent(
        """
        import numpy as np
        from mindfed import _core
        a, b = _core.net.Node("127.0.0.1"), _core.net.Node("127.0.0.1")
        payload = np.ones(32 << 20, np.uint8)
        for i in range(4):
            a.send(f"127.0.0.1:{b.port()}", 1, i, 0, payload)
        print("started", flush=True)
        """
    )
    # Execute
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    # Assert
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started"
    assert done.stderr == ""
