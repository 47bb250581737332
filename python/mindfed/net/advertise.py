"""The address a server's node transport listens on and advertises to its peers (`--tcp_server_ip`).

Peers connect to what a server registers in Redis, so that must be an address they can reach: a wildcard (`0.0.0.0`,
`::`) is refused. A host name is resolved once, at start, to the address listened on and advertised (IPv4 first).
With none given, the host's first non-loopback IPv4 address is taken, as MindSpore does (loopback when there is
none), and logged.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import socket
import struct

from mindfed.address import Address, AddressError, Hosts
from mindfed.errors import ConfigError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8


def first_non_loopback_ipv4() -> tuple[str, str] | None:
    """(interface, address) of the first interface, by index, that is up, not loopback and has an IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in sorted(socket.if_nameindex()):
            request = struct.pack("256s", name.encode()[:15])
            try:
                flags = struct.unpack("H", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)[16:18])[0]
                if not flags & _IFF_UP or flags & _IFF_LOOPBACK:
                    continue
                ip = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)[20:24])
            except OSError:  # no IPv4 address on this interface
                continue
            if not ipaddress.ip_address(ip).is_loopback:
                return name, ip
    return None


def advertised_tcp_host(text: str) -> str:
    """The IP to listen on and advertise for `--tcp_server_ip` = `text` ("" : the host's first non-loopback IPv4).

    Raises:
        ConfigError: a wildcard address, a malformed one, or a host name that does not resolve.
    """
    if not text:
        found = first_non_loopback_ipv4()
        if found is None:
            logger.info("tcp_server_ip not given and no non-loopback IPv4 address on this host: advertising %s",
                        LOOPBACK)
            return LOOPBACK
        logger.info("tcp_server_ip not given: advertising %s, the first non-loopback IPv4 address (%s)",
                    found[1], found[0])
        return found[1]
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        Address.parse(f"[{host}]:0" if ":" in host else f"{host}:0", hosts=Hosts.ANY)
    except AddressError:
        raise ConfigError(f"tcp_server_ip: {text!r} is not an IPv4 address, an IPv6 address or a host name") \
            from None
    ip = _literal(host)
    if ip is None:
        ip = _resolve(host)
        logger.info("tcp_server_ip %s resolves to %s: listening on and advertising %s", host, ip, ip)
    if ipaddress.ip_address(ip).is_unspecified:
        raise ConfigError(f"tcp_server_ip: {text!r} is a wildcard, not an address peers can reach; give this "
                          "host's address that the other servers can connect to (or leave it out to take the "
                          "first non-loopback IPv4 address)")
    return ip


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _resolve(host: str) -> str:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"tcp_server_ip: host name {host!r} does not resolve: {exc}") from None
    ips = [str(info[4][0]) for info in infos]
    v4 = [ip for ip in ips if ":" not in ip]
    if not ips:
        raise ConfigError(f"tcp_server_ip: host name {host!r} has no address")
    return (v4 or ips)[0]
