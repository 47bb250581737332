"""Redis URLs (`redis://[user:password@]host:port/db`, `rediss://...`, `unix://[user@]/path?db=N`) as
`distributed_cache.address` may give them: read by redis-py's own parser, never by hand, and written back with the
password masked wherever an address is shown (logs, errors, /state, process titles). The Sentinel and Cluster forms
(`redis+sentinel://`, `redis+cluster://`, cache/ha_url.py) are URLs too: masked and stripped of their password here,
read there.

Imports nothing of mindfed but the errors and ha_url, so the config layer can check an address with it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from redis.asyncio.connection import parse_url as redis_parse_url

from mindfed.cache import ha_url
from mindfed.errors import ConfigError

URL_SCHEMES = ("redis://", "rediss://", "unix://", *ha_url.SCHEMES)
MASK = "***"


def is_url(address: str) -> bool:
    """True for a `redis://`, `rediss://` or `unix://` URL, or a Sentinel or Cluster one (the older `ip:port` and
    `unix:/path` forms are not)."""
    return address.strip().lower().startswith(URL_SCHEMES)


def is_tls_url(address: str) -> bool:
    return address.strip().lower().startswith(("rediss://", "rediss+"))


def parse(address: str) -> dict[str, Any]:
    """redis-py's reading of a URL: host, port, db, username, password, path and query options.

    Raises:
        ConfigError: not a URL redis-py reads, or one without a host (TCP) or a socket path (unix), or a Sentinel or
            Cluster address (those are `ha_url.parse`'s); the message shows the URL with its password masked.
    """
    if ha_url.is_ha_url(address):
        raise ConfigError(f"{mask(address)!r} names a Sentinel set or a Redis Cluster, not one Redis")
    try:
        kwargs: dict[str, Any] = dict(redis_parse_url(address.strip()))
    except ValueError as exc:
        raise ConfigError(f"{mask(address)!r} is not a Redis URL: {exc}") from None
    kwargs.pop("connection_class", None)  # the caller picks the class (TLS, server name)
    if address.strip().lower().startswith("unix://"):
        if not kwargs.get("path"):
            raise ConfigError(f"{mask(address)!r} has no socket path; allowed: unix:///path/to/redis.sock")
    elif not kwargs.get("host"):
        raise ConfigError(f"{mask(address)!r} has no host; allowed: redis://[user:password@]host:port/db")
    return kwargs


def mask(address: str) -> str:
    """The address with any password replaced by `***` (in the user part and in a `password=` query option)."""
    if not is_url(address):
        return address
    parts = urlsplit(address.strip())
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name == "password" for name, _ in pairs):
            query = urlencode([(name, MASK if name == "password" else value) for name, value in pairs], safe="*/")
    return _join(parts.scheme, netloc, parts.path, query, parts.fragment)


def without_password(address: str) -> tuple[str, str]:
    """(the address with its password removed, that password or ""): for handing an address to a child process's
    command line while the password travels in its environment instead."""
    if not is_url(address):
        return address, ""
    if ha_url.is_ha_url(address):
        password = ha_url.parse(address, mask(address)).password
    else:
        password = str(parse(address).get("password") or "")
    if not password:
        return address, ""
    parts = urlsplit(address.strip())
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}@{hostport}" if user else hostport
    pairs = [(n, v) for n, v in parse_qsl(parts.query, keep_blank_values=True) if n != "password"]
    return _join(parts.scheme, netloc, parts.path, urlencode(pairs), parts.fragment), password


def _join(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    # not urlunsplit: it drops the `//` of an empty authority, and `unix:///path` must stay a URL
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
