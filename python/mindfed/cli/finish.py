"""`mindfed finish --redis_port P`: stop every process of the cluster that uses the Redis on port P (the seed's
finish_cloud.py), printing `killed PID` for each.

Only these are stopped, found through /proc:
- mindfed processes (`python -m mindfed...` or the `mindfed` script: schedulers, servers, launchers) whose cache is
  on port P: `--cache_address ...:P` (or a `redis://`/`rediss://` URL on port P), or else the
  `distributed_cache.address` of their `--yaml_config`;
- the `redis-server` listening on port P;
- a mindfed process whose child is one of the above (a launcher that owns an embedded Redis and its servers).
Never the caller or its ancestors. SIGTERM first, so servers leave the cluster cleanly and launchers stop their own
children; the Redis after them; SIGKILL for whatever is left after the grace period.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from mindfed.address import Address, AddressError, Hosts
from mindfed.cache import redis_url
from mindfed.errors import ConfigError

PROC = Path("/proc")
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One /proc entry: enough to match it and to be sure a later signal reaches the same process."""

    pid: int
    ppid: int
    start_ticks: int
    state: str
    argv: tuple[str, ...]

    @property
    def tokens(self) -> list[str]:
        # redis-server rewrites its title as "redis-server 127.0.0.1:P" inside argv[0]
        return [t for arg in self.argv for t in arg.split()]


def read_process(pid: int) -> ProcessInfo | None:
    """The process `pid`, or None when it is gone or unreadable."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    return ProcessInfo(pid=pid, ppid=int(fields[1]), start_ticks=int(fields[19]), state=fields[0], argv=argv)


def list_processes() -> dict[int, ProcessInfo]:
    found: dict[int, ProcessInfo] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = read_process(int(entry.name))
            if info is not None and info.state != "Z" and info.argv:
                found[info.pid] = info
    return found


def is_mindfed(argv: tuple[str, ...]) -> bool:
    """`python -m mindfed...`, or the `mindfed` console script (run directly or through an interpreter)."""
    for i, arg in enumerate(argv):
        if arg == "-m" and i + 1 < len(argv) and (argv[i + 1] == "mindfed" or argv[i + 1].startswith("mindfed.")):
            return True
    return any(Path(arg).name == "mindfed" for arg in argv[:2])


def is_redis_server(info: ProcessInfo) -> bool:
    return bool(info.tokens) and Path(info.tokens[0]).name.startswith("redis-server")


# redis-server titles itself `<its first bind address, as given>:<port>`: an optional bind keeps redis' leading `-`,
# the wildcards are `*` and `::*`, an IPv6 comes without brackets (`--bind ::1` gives `::1:6379`).
_TITLE_WILDCARDS = {"*:": "0.0.0.0:", "::*:": ":::"}


def _port_of(address: str) -> int | None:
    """The port of a Redis address (a flag, a YAML or a title; `ip:port` or a redis(s):// URL), or None."""
    if redis_url.is_url(address):
        try:
            found = redis_url.parse(address)
        except ConfigError:
            return None
        return int(found.get("port", 6379)) if "host" in found else None
    text = address.strip().removeprefix("-")
    for wildcard, ip in _TITLE_WILDCARDS.items():
        if text.startswith(wildcard):
            text = ip + text[len(wildcard):]
    try:
        return Address.parse(text, hosts=Hosts.RESOLVABLE, min_port=1).port
    except AddressError:
        return None


def redis_port_of(info: ProcessInfo) -> int | None:
    """The port a redis-server listens on, from its title (`*:P`) or its `--port P` flag (its `--tls-port P` when
    `--port 0` leaves it TLS only)."""
    tokens = info.tokens
    flags = {token: int(tokens[i + 1]) for i, token in enumerate(tokens)
             if token in ("--port", "--tls-port") and i + 1 < len(tokens) and tokens[i + 1].isdigit()}
    if flags.get("--port"):
        return flags["--port"]
    if flags.get("--tls-port"):
        return flags["--tls-port"]
    for token in tokens[1:]:
        if ":" in token and _port_of(token) is not None:
            return _port_of(token)
    return None


def _flag(argv: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def cache_port_of(info: ProcessInfo) -> int | None:
    """The Redis port a mindfed process uses: `--cache_address`, else its YAML's `distributed_cache.address`."""
    override = _flag(info.argv, "--cache_address")
    if override:
        return _port_of(override)
    yaml_path = _flag(info.argv, "--yaml_config")
    if not yaml_path:
        return None
    try:
        path = (PROC / str(info.pid) / "cwd").readlink() / yaml_path
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    cache = raw.get("distributed_cache") if isinstance(raw, dict) else None
    address = cache.get("address") if isinstance(cache, dict) else None
    return _port_of(address) if isinstance(address, str) else None


def _ancestors(pid: int, processes: dict[int, ProcessInfo]) -> set[int]:
    chain: set[int] = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        info = processes.get(pid) or read_process(pid)
        if info is None:
            break
        pid = info.ppid
    return chain


def find_cluster(redis_port: int, processes: dict[int, ProcessInfo] | None = None) -> tuple[list[int], list[int]]:
    """(mindfed pids, redis-server pids) of the cluster on `redis_port`, never the caller or its ancestors."""
    procs = list_processes() if processes is None else processes
    spared = _ancestors(os.getpid(), procs)
    redis = sorted(p for p, i in procs.items() if p not in spared and is_redis_server(i)
                   and redis_port_of(i) == redis_port)
    ours = {p for p, i in procs.items() if p not in spared and is_mindfed(i.argv) and cache_port_of(i) == redis_port}
    frontier = set(redis) | ours
    while frontier:  # launchers own embedded Redis servers and their FL servers: take the mindfed parents too
        parents = {procs[p].ppid for p in frontier if p in procs}
        frontier = {p for p in parents if p in procs and p not in spared and p not in ours
                    and is_mindfed(procs[p].argv)}
        ours |= frontier
    return sorted(ours), redis


def _alive(info: ProcessInfo) -> bool:
    now = read_process(info.pid)
    return now is not None and now.start_ticks == info.start_ticks and now.state != "Z"


def _signal_all(targets: list[ProcessInfo], sig: signal.Signals) -> None:
    for info in targets:
        if _alive(info):
            try:
                os.kill(info.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                print(f"cannot signal pid {info.pid}: permission denied", file=sys.stderr)


def _wait_gone(targets: list[ProcessInfo], timeout_s: float) -> list[ProcessInfo]:
    deadline = time.monotonic() + timeout_s
    left = [t for t in targets if _alive(t)]
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = [t for t in left if _alive(t)]
    return left


def stop_cluster(redis_port: int, grace_s: float = 10.0) -> tuple[list[int], list[int]]:
    """Stop the cluster on `redis_port`; returns (stopped pids, pids still alive)."""
    procs = list_processes()
    mindfed_pids, redis_pids = find_cluster(redis_port, procs)
    fl = [procs[p] for p in mindfed_pids]
    cache = [procs[p] for p in redis_pids]
    _signal_all(fl, signal.SIGTERM)
    left = _wait_gone(fl, grace_s)
    _signal_all(cache, signal.SIGTERM)  # after the servers: their clean leave still needs Redis
    left += _wait_gone(cache, min(grace_s, 5.0))
    _signal_all(left, signal.SIGKILL)
    left = _wait_gone(left, 5.0)
    survivors = {i.pid for i in left}
    return [i.pid for i in fl + cache if i.pid not in survivors], sorted(survivors)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis_port", type=int, required=True, help="port of the cluster's redis-server")
    parser.add_argument("--grace_s", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")


def run(args: argparse.Namespace) -> int:
    stopped, survivors = stop_cluster(args.redis_port, args.grace_s)
    for pid in stopped:
        print(f"killed {pid}", flush=True)
    for pid in survivors:
        print(f"could not stop pid {pid}", file=sys.stderr)
    if not stopped and not survivors:
        print(f"no mindfed process or redis-server found for redis port {args.redis_port}", file=sys.stderr)
    return 1 if survivors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mindfed finish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
