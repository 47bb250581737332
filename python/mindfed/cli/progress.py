"""The demo's progress display: a bar per iteration with participants (per server), training loss and test accuracy."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the simulator imports torch, which only the demo's devices need
    from mindfed.client.simulator import DeviceEvent

BAR_WIDTH = 24


class DemoProgress:
    """Prints one updating line while an iteration runs and a permanent line when it ends."""

    def __init__(self, iterations: int, devices: int) -> None:
        self._iterations = iterations
        self._devices = devices
        self._uploaded: dict[int, int] = {}
        self._started = time.monotonic()
        self._tty = sys.stdout.isatty()

    def device_event(self, event: DeviceEvent) -> None:
        if event.what == "uploaded":
            self._uploaded[event.iteration] = self._uploaded.get(event.iteration, 0) + 1
            if self._tty:
                done = self._uploaded[event.iteration]
                print(f"\r  iteration {event.iteration:>3}/{self._iterations}: {done}/{self._devices} updates",
                      end="", flush=True)

    def iteration_done(self, iteration: int, participants: int, train_loss: float, accuracy: float,
                       result: str, by_server: Sequence[int] = (), bytes_in: int = 0, bytes_out: int = 0) -> None:
        """Print the permanent line of `iteration`; `by_server` is the accepted updates of each server, if known;
        bytes_in/bytes_out are what the servers received from and sent to devices in that iteration."""
        filled = round(BAR_WIDTH * iteration / self._iterations)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        elapsed = time.monotonic() - self._started
        split = f" ({'+'.join(map(str, by_server))})" if len(by_server) > 1 else ""
        line = (f"[{bar}] it {iteration:>3}/{self._iterations} | participants {participants:>3}{split} | "
                f"train loss {train_loss:7.4f} | test acc {accuracy:6.2%} | {result:<7} | "
                f"in {bytes_in / 1e6:5.2f} MB out {bytes_out / 1e6:5.2f} MB | {elapsed:6.1f} s")
        print(("\r" if self._tty else "") + line, flush=True)
