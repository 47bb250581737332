"""Devices of the multi-host test, run inside their own network namespace (`ip netns exec`).

    python tests/e2e/multihost_device.py '{"fl_name": ..., "servers": {"6666": "10.77.0.3"}, "iteration": 1,
                                           "count": 6, "scheduler": "10.77.0.2:11202"}'

Joins `count` devices at `iteration` (spread over the servers; "join": false skips that), uploads the updates of
those in "upload" (default: all) and prints one JSON line: the
model startFLJob handed out, each acknowledged device's data size, and the scheduler's /state nodes when asked.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tests.e2e.cluster_procs import Devices, weights_of


@dataclass
class HostDevices(Devices):
    """Devices that reach each server at its own host (the port names the server)."""

    hosts: dict[int, str] = field(default_factory=dict)

    async def post(self, port: int, round_name: str, body: bytes) -> bytes:
        async with self.session.post(f"http://{self.hosts[port]}:{port}/{round_name}", data=body,
                                     timeout=aiohttp.ClientTimeout(total=30)) as resp:
            assert resp.status == 200, (port, round_name, resp.status)
            return await resp.read()


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    hosts = {int(port): host for port, host in spec["servers"].items()}
    ports, iteration = list(hosts), int(spec["iteration"])
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        if spec.get("scheduler"):
            async with session.post(f"http://{spec['scheduler']}/state",
                                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
                out["nodes"] = json.loads(await resp.text()).get("nodes", [])
        devices = HostDevices(session, spec["fl_name"], hosts=hosts)
        fl_ids = [f"dev{i:03d}" for i in range(int(spec["count"]))]
        at = {f: ports[i % len(ports)] for i, f in enumerate(fl_ids)}
        sizes = {f: 1 + (i * 5 + iteration) % 7 for i, f in enumerate(fl_ids)}
        if spec.get("join", True):
            jobs = await asyncio.gather(*(devices.join(at[f], f, iteration, sizes[f], timeout_s=60)
                                          for f in fl_ids))
            out["handed"] = {t.name: list(map(float, t.data)) for t in jobs[0].feature_map}
        uploading = spec.get("upload") or fl_ids
        replies = await asyncio.gather(*(devices.upload(at[f], f, iteration, weights_of(f, iteration), sizes[f])
                                         for f in uploading))
        out["acked"] = {f: sizes[f] for f, r in zip(uploading, replies, strict=True) if r.retcode == 200}
        out["served_by"] = {f: at[f] for f in fl_ids}
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
