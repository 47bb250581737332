"""Addresses of a replicated or sharded Redis, as `distributed_cache.address` gives them:

    redis+sentinel://[user:password@]host:port[,host:port...]/master_name[/db]   a Sentinel set (the sentinels)
    redis+cluster://[user:password@]host:port[,host:port...]                     a Redis Cluster (seed nodes)

and `rediss+sentinel://`, `rediss+cluster://` for TLS (to the sentinels and the data nodes alike). The user and
password are the data nodes' (master, replicas, cluster nodes), as in a `redis://` URL; a Sentinel's own `requirepass`
comes from MINDFED_REDIS_SENTINEL_USERNAME / MINDFED_REDIS_SENTINEL_PASSWORD (cache/connection.py). One string, like
every other address form, so it travels unchanged through `--cache_address`, the launcher's child command lines (the
password moved to the environment by `redis_url.without_password`) and `mindfed config check`.

Imports nothing of mindfed but the address parser and the errors, so the config layer can check an address with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote

from mindfed.address import Address, AddressError, Hosts
from mindfed.errors import ConfigError

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
SCHEMES = SENTINEL_SCHEMES + CLUSTER_SCHEMES
_FORMS = ("redis+sentinel://[user:password@]host:port[,host:port...]/master_name[/db] or "
          "redis+cluster://[user:password@]host:port[,host:port...] (rediss+... for TLS)")


class Topology(StrEnum):
    """How the Redis behind an address is laid out."""

    SINGLE = "single"  # one Redis (ip:port, unix socket, redis://, rediss://, unix://)
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True, slots=True)
class HaAddress:
    """A parsed Sentinel or Cluster address.

    Attributes:
        topology: SENTINEL or CLUSTER.
        nodes: the sentinels (SENTINEL) or the seed nodes (CLUSTER), in the order given.
        master: the Sentinel master name ("" for a cluster).
        db: the database number (always 0 in a cluster).
        tls: True for the rediss+ schemes.
        username: the data nodes' user ("" = none given).
        password: the data nodes' password ("" = none given); kept out of the repr.
    """

    topology: Topology
    nodes: tuple[Address, ...]
    master: str = ""
    db: int = 0
    tls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)

    def describe(self) -> str:
        """One line for logs and `mindfed config check`, no secret: "Sentinel master 'm' via 3 sentinels (TLS)"."""
        nodes = ", ".join(str(node) for node in self.nodes)
        tls = ", TLS" if self.tls else ""
        if self.topology == Topology.SENTINEL:
            return f"Redis Sentinel master {self.master!r} db {self.db} via {len(self.nodes)} sentinels ({nodes}{tls})"
        return f"Redis Cluster from {len(self.nodes)} seed nodes ({nodes}{tls})"


def is_ha_url(address: str) -> bool:
    """True for a redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster:// address."""
    return address.strip().lower().startswith(SCHEMES)


def topology_of(address: str) -> Topology:
    text = address.strip().lower()
    if text.startswith(SENTINEL_SCHEMES):
        return Topology.SENTINEL
    if text.startswith(CLUSTER_SCHEMES):
        return Topology.CLUSTER
    return Topology.SINGLE


def parse(address: str, masked: str) -> HaAddress:
    """Read a Sentinel or Cluster address.

    Args:
        address: the address as given.
        masked: the same with its password masked, for error messages.

    Raises:
        ConfigError: no node, a node that is not host:port, a node twice, no or a bad master name, a bad db, a db in a
            cluster address, or a query or fragment (options come from `distributed_cache`'s keys instead).
    """
    text = address.strip()
    topology = topology_of(text)
    if topology == Topology.SINGLE:
        raise ConfigError(f"{masked!r} is not a Sentinel or Cluster address; allowed: {_FORMS}")
    scheme, _, rest = text.partition("://")
    if "?" in rest or "#" in rest:
        raise ConfigError(f"{masked!r}: a {scheme}:// address takes no ?options or #fragment (TLS files and the "
                          "rest come from distributed_cache's keys)")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    nodes = _nodes(hostlist, masked)
    master, db = _path(topology, path if slash else "", masked)
    return HaAddress(topology, nodes, master, db, scheme.lower().startswith("rediss"), unquote(username),
                     unquote(password))


def _nodes(hostlist: str, masked: str) -> tuple[Address, ...]:
    items = [item.strip() for item in hostlist.split(",")]
    if not hostlist.strip() or any(not item for item in items):
        raise ConfigError(f"{masked!r} names no node (or an empty one between commas); allowed: {_FORMS}")
    nodes: list[Address] = []
    for item in items:
        try:
            node = Address.parse(item, hosts=Hosts.RESOLVABLE, min_port=1)
        except AddressError as exc:
            raise ConfigError(f"{masked!r}: {exc}") from None
        if node in nodes:
            raise ConfigError(f"{masked!r} names {item!r} twice")
        nodes.append(node)
    return tuple(nodes)


def _path(topology: Topology, path: str, masked: str) -> tuple[str, int]:
    parts = [unquote(part) for part in path.split("/")] if path else []
    if topology == Topology.CLUSTER:
        if parts not in ([], [""], ["0"]):
            raise ConfigError(f"{masked!r}: a Redis Cluster has database 0 only; allowed: {_FORMS}")
        return "", 0
    if not parts or not parts[0]:
        raise ConfigError(f"{masked!r} names no Sentinel master; allowed: {_FORMS}")
    if len(parts) > 2 or (len(parts) == 2 and not (parts[1].isascii() and parts[1].isdigit())):
        raise ConfigError(f"{masked!r}: after the master name only a database number may follow; allowed: {_FORMS}")
    master = parts[0]
    if any(ch.isspace() for ch in master):
        raise ConfigError(f"{masked!r}: the Sentinel master name {master!r} has white space")
    return master, int(parts[1]) if len(parts) == 2 else 0
