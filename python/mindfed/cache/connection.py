"""How every mindfed process reaches its Redis: one builder from `distributed_cache` (and `enable_ssl`) to the
connection settings of `CacheStore.connect`, used by servers, the scheduler, the job API and the demo alike.

Address forms: `ip:port`, `[ipv6]:port`, `unix:/path` (MindSpore's), the URLs of `redis_url`, and a Sentinel set or a
Redis Cluster (`redis+sentinel://`, `redis+cluster://`, see `ha_url`). Credentials: the URL's own user and password
win; when it names none, `MINDFED_REDIS_USERNAME` / `MINDFED_REDIS_PASSWORD` supply them (for every form, so a YAML
never has to hold a secret); sentinels use `MINDFED_REDIS_SENTINEL_USERNAME` / `MINDFED_REDIS_SENTINEL_PASSWORD`
(a Sentinel's `requirepass` is its own), none when unset.
TLS: a `rediss://` URL, or `enable_ssl: true` with an `ip:port` address (as MindSpore's hiredis client), with
`distributed_cache.{cacert_filename, capath, cert_filename, private_key_filename, server_name}`; a `redis://` URL is
plain by choice even under `enable_ssl`. The rediss+ forms apply the same files to every sentinel and data node. The
password is kept out of every text this module makes: `RedisTarget.display` and its repr show it as `***`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

from mindfed.address import Address, Hosts
from mindfed.cache import ha_url, redis_url
from mindfed.cache.ha_url import Topology
from mindfed.config.schema_cluster import DistributedCacheConfig
from mindfed.errors import CacheAccessError, ConfigError

logger = logging.getLogger(__name__)

PASSWORD_ENV = "MINDFED_REDIS_PASSWORD"
USERNAME_ENV = "MINDFED_REDIS_USERNAME"
SENTINEL_PASSWORD_ENV = "MINDFED_REDIS_SENTINEL_PASSWORD"
SENTINEL_USERNAME_ENV = "MINDFED_REDIS_SENTINEL_USERNAME"


class NamedSSLConnection(SSLConnection):
    """redis-py's TLS connection, but sending `ssl_server_name` as SNI and checking the certificate against it
    (`distributed_cache.server_name`) instead of the host it dials, e.g. when Redis is reached by IP."""

    def __init__(self, *, ssl_server_name: str = "", **kwargs: Any) -> None:
        self._server_name = ssl_server_name
        super().__init__(**kwargs)

    def _connection_arguments(self) -> Mapping[str, Any]:
        arguments = dict(super()._connection_arguments())
        if self._server_name:
            arguments["server_hostname"] = self._server_name
        return arguments


class NamedSentinelSSLConnection(SentinelManagedConnection, NamedSSLConnection):
    """A TLS connection to the master a Sentinel names, with `NamedSSLConnection`'s server name."""


@dataclass(frozen=True, slots=True)
class RedisTls:
    """TLS to Redis, from `distributed_cache`'s keys; "" = not given (the system CA store verifies the server)."""

    cacert_filename: str = ""
    capath: str = ""
    cert_filename: str = ""
    private_key_filename: str = ""
    server_name: str = ""

    @classmethod
    def from_config(cls, cache: DistributedCacheConfig) -> RedisTls:
        return cls(cache.cacert_filename, cache.capath, cache.cert_filename, cache.private_key_filename,
                   cache.server_name)

    def connection_kwargs(self) -> dict[str, Any]:
        """redis-py's `ssl_*` settings; only keys given, so a URL's own `?ssl_...` options stay in force otherwise.

        Raises:
            ConfigError: a named file or directory does not exist, or a client certificate without its key.
        """
        for key, path, kind in (("cacert_filename", self.cacert_filename, "file"), ("capath", self.capath, "dir"),
                                ("cert_filename", self.cert_filename, "file"),
                                ("private_key_filename", self.private_key_filename, "file")):
            if path and not (Path(path).is_dir() if kind == "dir" else Path(path).is_file()):
                raise ConfigError(f"distributed_cache.{key}: {path!r} is not a readable {kind}")
        if bool(self.cert_filename) != bool(self.private_key_filename):
            raise ConfigError("distributed_cache.cert_filename and distributed_cache.private_key_filename go together "
                              "(the client certificate for Redis' tls-auth-clients)")
        given = {"ssl_ca_certs": self.cacert_filename, "ssl_ca_path": self.capath, "ssl_certfile": self.cert_filename,
                 "ssl_keyfile": self.private_key_filename, "ssl_server_name": self.server_name}
        return {name: value for name, value in given.items() if value}


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where and how to connect: redis-py connection-pool settings plus a printable, password-free address.

    Attributes:
        display: the address as logs and errors show it (password masked).
        tls: True when the connection is TLS.
        settings: `connection_class` and its keyword arguments (host/port/db or path, username, password, ssl_*)
            of the data nodes (for a cluster: RedisCluster's keyword arguments); kept out of the repr since it holds
            the password.
        topology: one Redis, a Sentinel set or a Redis Cluster.
        nodes: the sentinels or the cluster's seed nodes (empty for one Redis).
        master: the Sentinel master name.
        sentinel_settings: the sentinels' connection pool settings (connection_class, credentials, ssl_*).
        replica_acks: replicas that must have an update before it is acknowledged (`WAIT`); 0 = do not wait.
        replica_ack_timeout_ms: the most one `WAIT` blocks.
    """

    display: str
    tls: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)
    topology: Topology = Topology.SINGLE
    nodes: tuple[Address, ...] = ()
    master: str = ""
    sentinel_settings: Mapping[str, Any] = field(default_factory=dict, repr=False)
    replica_acks: int = 0
    replica_ack_timeout_ms: int = 1000

    def __str__(self) -> str:
        return self.display


def target_for(cache: DistributedCacheConfig, enable_ssl: bool = False,
               env: Mapping[str, str] | None = None) -> RedisTarget:
    """The connection of a job's `distributed_cache` section (TLS as the module docstring says).

    Raises:
        ConfigError: an embedded address (there is nothing to connect to before it is started), an unreadable TLS
            file.
    """
    if cache.is_embedded:
        raise ConfigError("distributed_cache.address is empty: start the embedded Redis first and connect to its "
                          "address")
    target = target_of(cache.address, RedisTls.from_config(cache), enable_ssl=enable_ssl, env=env)
    return dataclasses.replace(target, replica_acks=cache.effective_replica_acks,
                               replica_ack_timeout_ms=cache.replica_ack_timeout_ms)


def target_of(address: str, tls: RedisTls | None = None, *, enable_ssl: bool = False,
              env: Mapping[str, str] | None = None) -> RedisTarget:
    """The connection of one address (any form of the module docstring).

    Args:
        address: `ip:port`, `[v6]:port`, `unix:/path` or a Redis URL.
        tls: the TLS files; used when the connection is TLS.
        enable_ssl: the YAML's `enable_ssl`: TLS for an `ip:port` address.
        env: where the credential variables are read; `os.environ` by default.

    Raises:
        ConfigError: a malformed address or URL (password masked in the message), an unreadable TLS file.
    """
    env = os.environ if env is None else env
    text = address.strip()
    if ha_url.is_ha_url(text):
        return _ha_target(text, tls or RedisTls(), env, enable_ssl=enable_ssl)
    settings: dict[str, Any]
    if redis_url.is_url(text):
        settings = redis_url.parse(text)
        unix = text.lower().startswith("unix://")
        use_tls = redis_url.is_tls_url(text)
        if enable_ssl and text.lower().startswith("redis://"):
            logger.warning("enable_ssl is true but distributed_cache.address is a redis:// URL: Redis traffic is not "
                           "encrypted (use rediss:// for TLS)")
    elif text.startswith("unix:"):
        settings, unix, use_tls = {"path": text[len("unix:"):]}, True, False
    else:
        parsed = Address.parse(text, hosts=Hosts.RESOLVABLE, min_port=1)
        settings, unix, use_tls = {"host": parsed.host, "port": parsed.port}, False, enable_ssl
    if unix and "path" in settings:
        settings["connection_class"] = UnixDomainSocketConnection
    elif use_tls:
        settings.update((tls or RedisTls()).connection_kwargs())
        settings["connection_class"] = NamedSSLConnection
    else:
        settings["connection_class"] = Connection
    _credentials(settings, env, USERNAME_ENV, PASSWORD_ENV)
    return RedisTarget(display=redis_url.mask(text), tls=use_tls, settings=settings)


def _ha_target(text: str, tls: RedisTls, env: Mapping[str, str], *, enable_ssl: bool) -> RedisTarget:
    """A Sentinel set or a Redis Cluster: the data nodes' settings, and the sentinels' own."""
    display = redis_url.mask(text)
    ha = ha_url.parse(text, display)
    if enable_ssl and not ha.tls:
        logger.warning("enable_ssl is true but distributed_cache.address is a %s address without TLS: Redis traffic "
                       "is not encrypted (use rediss+...)", ha.topology.value)
    settings: dict[str, Any] = {"username": ha.username, "password": ha.password}
    _credentials(settings, env, USERNAME_ENV, PASSWORD_ENV)
    tls_kwargs = tls.connection_kwargs() if ha.tls else {}
    if ha.topology == Topology.CLUSTER:
        unsupported = sorted({"ssl_ca_path", "ssl_server_name"} & set(tls_kwargs))
        if unsupported:
            raise ConfigError(f"{display!r}: redis-py's cluster client takes no {', '.join(unsupported)} "
                              "(distributed_cache.capath / server_name)")
        if ha.tls:
            settings.update(tls_kwargs, ssl=True)
        return RedisTarget(display=display, tls=ha.tls, settings=settings, topology=ha.topology, nodes=ha.nodes)
    settings.update(tls_kwargs, db=ha.db,
                    connection_class=NamedSentinelSSLConnection if ha.tls else SentinelManagedConnection)
    sentinel: dict[str, Any] = {**tls_kwargs, "connection_class": NamedSSLConnection if ha.tls else Connection}
    _credentials(sentinel, env, SENTINEL_USERNAME_ENV, SENTINEL_PASSWORD_ENV)
    return RedisTarget(display=display, tls=ha.tls, settings=settings, topology=ha.topology, nodes=ha.nodes,
                       master=ha.master, sentinel_settings=sentinel)


def _credentials(settings: dict[str, Any], env: Mapping[str, str], user_env: str, password_env: str) -> None:
    """Fill in a user and password the address did not give from the environment; drop empty ones."""
    for key, name in (("username", user_env), ("password", password_env)):
        if not settings.get(key) and env.get(name):
            settings[key] = env[name]
        if not settings.get(key):
            settings.pop(key, None)


def access_problem(exc: BaseException, target: RedisTarget) -> CacheAccessError | None:
    """The start-up error for a failure that retrying cannot cure (credentials, ACL, TLS), or None for one that may
    pass (Redis not up yet, a restart). Messages name the cause and the masked address, never a secret."""
    chain = _chain(exc)
    where = target.display
    for err in chain:
        if isinstance(err, AuthenticationError) or (isinstance(err, RedisError) and _is_auth_reply(str(err))):
            why = (str(err) if target.settings.get("password")
                   else "the server requires a password and none was given")
            return CacheAccessError(f"Redis authentication failed at {where}: {why} (the URL's user and password, "
                                    f"or {USERNAME_ENV} / {PASSWORD_ENV})")
        if isinstance(err, NoPermissionError):
            return CacheAccessError(f"Redis refused a command for this user at {where} (ACL): {err}")
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError):
            return CacheAccessError(f"Redis TLS handshake failed: certificate verify failed at {where}: "
                                    f"{err.verify_message} (distributed_cache.cacert_filename / capath / server_name)")
        if isinstance(err, ssl.SSLError):
            return CacheAccessError(f"Redis TLS handshake failed at {where}: {err.reason or err} (is it a TLS port? "
                                    "distributed_cache.cert_filename / private_key_filename for tls-auth-clients)")
    return None


async def tls_refusal(target: RedisTarget, listen_s: float = 1.0) -> CacheAccessError | None:
    """Why a TLS Redis resets this client right after the handshake, asked on a connection that sends nothing.

    Under TLS 1.3 the server checks the client's certificate after the client has finished its handshake: a client
    that already sent a command gets the server's alert and then a reset for the unread command, and the reset often
    wins (the alert is discarded). A connection that only listens gets the alert itself (and a plain close), so the
    refusal can be named. None when nothing is refused within `listen_s` (or the target is not one TLS Redis).
    """
    settings = dict(target.settings)
    connection_class = settings.pop("connection_class", None)
    if (target.topology != Topology.SINGLE or not isinstance(connection_class, type)
            or not issubclass(connection_class, SSLConnection)):
        return None
    connection = connection_class(**settings)
    arguments = dict(connection._connection_arguments())  # noqa: SLF001 - host, port, ssl context and server name
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(**arguments), listen_s)
    except (OSError, TimeoutError) as exc:
        return access_problem(exc, target)
    try:
        await asyncio.wait_for(reader.read(1), listen_s)
    except TimeoutError:
        return None  # nothing refused: the server waits for a command, as it should
    except OSError as exc:  # ssl.SSLError is one: the alert
        return access_problem(exc, target)
    finally:
        writer.transport.abort()  # no close_notify owed: nothing was said
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), listen_s)
    return None


def retry_hint(reason: str, target: RedisTarget) -> str:
    """A hint for a failure that looks like TLS spoken to a plain port, or plain text to a TLS one."""
    if target.tls and "Timeout" in reason:
        return f"{reason} (a TLS client waits like this on a plain Redis port: is it a TLS port?)"
    if not target.tls and ("reset by peer" in reason or "Connection closed" in reason):
        return f"{reason} (a TLS-only Redis drops plain clients like this: use rediss:// or enable_ssl)"
    return reason


def _is_auth_reply(text: str) -> bool:
    return text.startswith(("NOAUTH", "WRONGPASS", "invalid username-password pair", "Authentication required",
                            "Invalid Username or Password"))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
