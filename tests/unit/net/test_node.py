"""_core.net.Node life cycle: threads joined on close and on drop, clean interpreter exit, bad arguments."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mindfed import _core
from mindfed.errors import NetworkError

# The thread counts are taken in a fresh interpreter: in the test process, threads of earlier tests (executors,
# Redis clients) may start or end at any time and would make a count of this process's threads meaningless.
THREADS = "sum(1 for _ in Path('/proc/self/task').iterdir())"


def run_isolated(body: str) -> None:
    """Runs `body` (with `_core`, `gc`, `Path`, `threads()` in scope) in a fresh interpreter; it must exit 0."""
    code = ("import gc\nfrom pathlib import Path\nfrom mindfed import _core\n"
            f"def threads():\n    return {THREADS}\n" + textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_close_joins_the_io_thread_and_is_idempotent() -> None:
    run_isolated("""
        before = threads()
        node = _core.net.Node("127.0.0.1")
        assert threads() == before + 1, "no io thread"
        node.close()
        node.close()
        assert threads() == before, "the io thread outlived close()"
        assert node.take_ready() == []
        try:
            node.send("127.0.0.1:1", 1, 1, 0, b"x")
        except Exception as exc:  # NetworkError
            assert "closed" in str(exc), exc
        else:
            raise AssertionError("send after close was accepted")
    """)


def test_dropping_last_reference_joins_the_io_thread() -> None:
    run_isolated("""
        before = threads()
        node = _core.net.Node("127.0.0.1")
        del node
        gc.collect()
        assert threads() == before, "the io thread outlived the last reference"
    """)


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
