"""Sections about the cluster around the rounds: `aggregation:`, `distributed_cache:`, `ssl:`, `client_verify:`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mindfed.address import Address, AddressError, Hosts
from mindfed.cache import ha_url, redis_url
from mindfed.cache.ha_url import HaAddress, Topology
from mindfed.config.enums import AggregationType
from mindfed.config.key_spec import bool_key, enum_key, float_key, int_key, str_key, validate_fields
from mindfed.errors import ConfigError

EMBEDDED_ADDRESSES = frozenset({"", "embedded"})
_UNIX_PREFIX = "unix:"
# The cipher suites MindSpore's server-to-server TCP accepts (CC/common/constants.h::kCiphers).
TCP_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-CCM",
    "ECDHE-ECDSA-AES256-CCM",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregationConfig:
    """The `aggregation:` section (only meaningful in CLOUD_TRAINING).

    Attributes:
        aggregation_type: The server-side aggregation rule.
        iid_rate: Data IID-ness hint in (0, 1]; 0.0 = not given. Only stored in the hyper params.
        total_client_num: Scaffold's divisor.
    """

    SECTION: ClassVar[str] = "aggregation"

    aggregation_type: AggregationType = enum_key(AggregationType, AggregationType.FED_AVG)
    iid_rate: float = float_key(0.0, lo=0.0, hi=1.0, lo_open=True, unset=0.0)
    total_client_num: int = int_key(1, lo=1)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DistributedCacheConfig:
    """The `distributed_cache:` section: the Redis every server shares.

    Attributes:
        type: Ignored (always Redis); kept so MindSpore YAMLs load.
        address: "ip:port", "[ipv6]:port", "unix:/path", a Redis URL ("redis://[user:password@]host:port/db",
            "rediss://..." for TLS, "unix:///path?db=N"), a Sentinel set
            ("redis+sentinel://[user:password@]host:port,host:port/master_name[/db]"), a Redis Cluster
            ("redis+cluster://[user:password@]host:port,host:port"; rediss+... for TLS), or "" / "embedded" for a
            Redis the server starts itself. Never shown with its password (`display_address`).
        plugin_lib_path: Unused; kept so MindSpore YAMLs load.
        cacert_filename: Redis TLS CA file (used with enable_ssl and an ip:port address, or a rediss:// URL).
        capath: Redis TLS CA directory.
        cert_filename: Redis TLS client certificate.
        private_key_filename: Redis TLS client key.
        server_name: Redis TLS SNI / expected server name.
        replica_acks: Replicas that must hold an update before its device is answered SUCCEED (Redis `WAIT`), so a
            failover to a replica loses no acknowledged update; -1 (the default) = 1 with a Sentinel address, else 0.
        replica_ack_timeout_ms: How long one `WAIT` may block; an update not replicated by then is answered safemode.
    """

    SECTION: ClassVar[str] = "distributed_cache"

    type: str = str_key("redis")
    address: str = str_key(required=True, allow_empty=True)
    plugin_lib_path: str = str_key("")
    cacert_filename: str = str_key("")
    capath: str = str_key("")
    cert_filename: str = str_key("")
    private_key_filename: str = str_key("")
    server_name: str = str_key("")
    replica_acks: int = int_key(-1, lo=0, hi=16, unset=-1)
    replica_ack_timeout_ms: int = int_key(1000, lo=1, hi=60000)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
        if self.ha is not None:
            self._check_ha(self.ha)
            return
        if self.effective_replica_acks and self.is_embedded:
            raise ConfigError("distributed_cache.replica_acks: the embedded Redis has no replica to wait for; "
                              "allowed: 0 (or -1 for the default)")
        if self.is_url:
            try:
                redis_url.parse(self.address)
            except ConfigError as exc:
                raise ConfigError(f"distributed_cache.address: {exc}") from None
            return
        if self.is_unix and not self.unix_path:
            raise ConfigError(f"distributed_cache.address: {self.address!r} has no socket path; allowed: 'unix:/path'")
        if not self.is_embedded and not self.is_unix:
            _split_host_port(self.address)  # raises on a malformed address

    def _check_ha(self, ha: HaAddress) -> None:
        if ha.topology != Topology.CLUSTER:
            return
        # redis-py's RedisCluster takes neither a CA directory nor a TLS server name, and a WAIT would not reach the
        # connection that made the writes (a cluster pipeline sends a keyless command to any node).
        for key, value in (("capath", self.capath), ("server_name", self.server_name)):
            if value:
                raise ConfigError(f"distributed_cache.{key}: not supported with a Redis Cluster address (redis-py's "
                                  "cluster client takes cacert_filename, cert_filename and private_key_filename)")
        if self.effective_replica_acks:
            raise ConfigError("distributed_cache.replica_acks: not supported with a Redis Cluster address (WAIT cannot "
                              "follow a write to its shard); allowed: 0 (or -1 for the default)")

    @property
    def ha(self) -> HaAddress | None:
        """The parsed Sentinel or Cluster address, None for every other form.

        Raises:
            ConfigError: a malformed Sentinel or Cluster address (password masked).
        """
        if not ha_url.is_ha_url(self.address):
            return None
        try:
            return ha_url.parse(self.address, self.display_address)
        except ConfigError as exc:
            raise ConfigError(f"distributed_cache.address: {exc}") from None

    @property
    def topology(self) -> Topology:
        """SINGLE (one Redis, embedded included), SENTINEL or CLUSTER."""
        return ha_url.topology_of(self.address)

    @property
    def effective_replica_acks(self) -> int:
        """`replica_acks`, with the default (-1) resolved: 1 under Sentinel, 0 otherwise."""
        if self.replica_acks >= 0:
            return self.replica_acks
        return 1 if self.topology == Topology.SENTINEL else 0

    @property
    def is_embedded(self) -> bool:
        """True when the server should start and own a Redis itself (address "" or "embedded")."""
        return self.address.strip() in EMBEDDED_ADDRESSES

    def __repr__(self) -> str:
        return (f"DistributedCacheConfig(address={self.display_address!r}, cacert_filename={self.cacert_filename!r}, "
                f"capath={self.capath!r}, cert_filename={self.cert_filename!r}, "
                f"private_key_filename={self.private_key_filename!r}, server_name={self.server_name!r}, "
                f"replica_acks={self.replica_acks!r}, replica_ack_timeout_ms={self.replica_ack_timeout_ms!r})")

    @property
    def display_address(self) -> str:
        """The address as logs and errors may show it: a URL's password masked as `***`."""
        return redis_url.mask(self.address)

    @property
    def is_url(self) -> bool:
        """True for a redis://, rediss:// or unix:// URL (read by redis-py); False for a Sentinel or Cluster one."""
        return redis_url.is_url(self.address) and not ha_url.is_ha_url(self.address)

    @property
    def is_unix(self) -> bool:
        """True for a Unix-socket address ("unix:/path"; a unix:// URL is `is_url`)."""
        return self.address.startswith(_UNIX_PREFIX) and not self.is_url

    @property
    def unix_path(self) -> str:
        """The socket path of a "unix:/path" address or a unix:// URL; "" otherwise."""
        if self.is_url:
            return str(redis_url.parse(self.address).get("path", "")) if "unix://" in self.address.lower() else ""
        return self.address[len(_UNIX_PREFIX) :] if self.is_unix else ""

    @property
    def host(self) -> str:
        """The host of an "ip:port" address or a redis(s):// URL (IPv6 without brackets); "" for embedded, Unix
        sockets, Sentinel and Cluster addresses."""
        if self.ha is not None:
            return ""
        if self.is_url:
            return str(redis_url.parse(self.address).get("host", ""))
        if self.is_embedded or self.is_unix:
            return ""
        return _split_host_port(self.address)[0]

    @property
    def port(self) -> int:
        """The port of an "ip:port" address or a redis(s):// URL (6379 when it names none); 0 for embedded, Unix
        sockets, Sentinel and Cluster addresses."""
        if self.ha is not None:
            return 0
        if self.is_url:
            found = redis_url.parse(self.address)
            return int(found.get("port", 6379)) if "host" in found else 0
        if self.is_embedded or self.is_unix:
            return 0
        return _split_host_port(self.address)[1]


def _split_host_port(address: str) -> tuple[str, int]:
    try:
        parsed = Address.parse(address, hosts=Hosts.RESOLVABLE, min_port=1)
    except AddressError as exc:
        raise ConfigError(f"distributed_cache.address: {exc}, or 'unix:/path', a redis://, rediss:// or unix:// URL, "
                          "or '' / 'embedded' for an embedded Redis") from None
    return parsed.host, parsed.port


@dataclass(frozen=True, slots=True, kw_only=True)
class SSLConfig:
    """The `ssl:` section; the path keys and cipher_list are required only when enable_ssl is true.

    Attributes:
        server_cert_path: PKCS#12 with the server certificate and key (HTTPS and server TCP).
        client_cert_path: PKCS#12 for outgoing server-to-server TCP.
        ca_cert_path: PEM CA that verifies TCP peers.
        crl_path: PEM CRL checked against the own certificate; "" = none.
        cipher_list: Colon-separated cipher suites; every one must be in TCP_CIPHERS.
        cert_expire_warning_time_in_day: Warn when a certificate expires within this many days.
    """

    SECTION: ClassVar[str] = "ssl"
    REQUIRED_WITH_SSL: ClassVar[tuple[str, ...]] = (
        "server_cert_path",
        "client_cert_path",
        "ca_cert_path",
        "cipher_list",
    )

    server_cert_path: str = str_key("")
    client_cert_path: str = str_key("")
    ca_cert_path: str = str_key("")
    crl_path: str = str_key("")
    cipher_list: str = str_key("")
    cert_expire_warning_time_in_day: int = int_key(90, lo=7, hi=180)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)

    @property
    def ciphers(self) -> tuple[str, ...]:
        """cipher_list split on ':' with empty entries dropped."""
        return tuple(c.strip() for c in self.cipher_list.split(":") if c.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientVerifyConfig:
    """The `client_verify:` section: Huawei-device PKI attestation of every device request.

    Attributes:
        pki_verify: Verify certificate chains and request signatures.
        root_first_ca_path: PEM "Root CA"; required when pki_verify.
        root_second_ca_path: PEM "Root CA G2"; required when pki_verify.
        equip_crl_path: PEM CRL of device equipment certificates; a missing file only warns.
        replay_attack_time_diff: Largest |now - request timestamp| accepted, ms.
    """

    SECTION: ClassVar[str] = "client_verify"
    REQUIRED_WITH_PKI: ClassVar[tuple[str, ...]] = ("root_first_ca_path", "root_second_ca_path")

    pki_verify: bool = bool_key(False)
    root_first_ca_path: str = str_key("")
    root_second_ca_path: str = str_key("")
    equip_crl_path: str = str_key("")
    replay_attack_time_diff: int = int_key(600000, lo=0, hi=None)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
