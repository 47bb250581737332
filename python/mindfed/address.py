"""`host:port`, parsed, checked and written in one place, for every address of a job (devices' HTTP, the scheduler's
REST plane, Redis, the node-to-node transport).

Which hosts an address may name is the caller's rule, not a second parser: MindSpore takes a literal IPv4 for a
server's `http_server_address` (`inet_addr`), an IPv4 or a bracketed IPv6 for the scheduler's manage address
(`CommUtil::SplitIpAddress`), and a Redis address may also be a host name. IPv6 is always written in brackets
(`[::1]:6666`); a bare one is read only where the caller allows it, the port being the last colon's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from mindfed.errors import ConfigError

MAX_PORT = 65535
# RFC 1123: dot-separated labels of letters, digits and inner hyphens, 63 characters each, 253 in all.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# What the resolver takes beyond RFC 1123: underscores (Docker Compose resolves a service `my_redis`).
_RESOLVABLE_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class Hosts(StrEnum):
    """What the host part may be."""

    IPV4 = "a literal IPv4 address"
    IP = "an IPv4 address or an IPv6 address in brackets"
    ANY = "an IPv4 address, an IPv6 address in brackets or a host name"
    # A Redis address (distributed_cache.address, --cache_address, redis-server's own title): redis-py hands the host
    # to getaddrinfo and redis-server writes a bare IPv6 in its title; what these took before there was one parser.
    RESOLVABLE = "an IPv4 address, an IPv6 address (brackets optional) or a host name (underscores allowed)"


class AddressError(ConfigError):
    """Not an address under the caller's rule; the message names the text and what is allowed.

    A ConfigError (so a ValueError too): every address comes from a flag or a YAML, and a caller that does not name
    the key itself (the launcher, the demo) still ends in the CLI's config exit, not in a traceback.
    """


@dataclass(frozen=True, slots=True)
class Address:
    """A host (an IP without brackets, or a name) and a port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, hosts: Hosts = Hosts.ANY, min_port: int = 0) -> Address:
        """`ip:port`, `[v6]:port` or `name:port`.

        Args:
            text: the address as given.
            hosts: what the host may be.
            min_port: the lowest port allowed; 0 (the default) means "the OS picks a free one" to a listener.

        Raises:
            AddressError: "'x' is not an address; allowed: host:port with ... and a port in [..]".
        """
        host, sep, port = text.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        if bracketed:
            host = host[1:-1]
        if (not sep or not port.isascii() or not port.isdigit() or not min_port <= int(port) <= MAX_PORT
                or not _host_ok(host, bracketed, hosts)):
            raise AddressError(f"{text!r} is not an address; allowed: host:port with {hosts.value} as the host and a "
                               f"port in [{min_port}, {MAX_PORT}]")
        return cls(host, int(port))

    def with_port(self, port: int) -> Address:
        return Address(self.host, port)

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


def _host_ok(host: str, bracketed: bool, hosts: Hosts) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.version == 6:  # `::1:80` reads as one IPv6 to a person: bare only where the caller allows it
            return (bracketed or hosts is Hosts.RESOLVABLE) and hosts is not Hosts.IPV4
        return not bracketed
    if (bracketed or hosts not in (Hosts.ANY, Hosts.RESOLVABLE) or not host or len(host) > 253
            or host[0].isdigit() and _dotted(host)):
        return False
    label = _RESOLVABLE_LABEL if hosts is Hosts.RESOLVABLE else _LABEL
    return all(label.match(part) for part in host.rstrip(".").split("."))


def _dotted(host: str) -> bool:
    """A dotted run of digits that is not a valid IPv4 (`1.2.3.999`): a typo, not a host name."""
    return all(part.isdigit() for part in host.split("."))
