"""The live `ssl.SSLContext` of an HTTPS server (device API, scheduler REST), kept current without a restart.

Built as MindSpore's `SSLHTTP` builds its SSL_CTX (spec §10.1): certificate and key from the PKCS#12
`ssl.server_cert_path`, `ssl.cipher_list` applied (every name inside MindSpore's 9-entry allow-list), TLS 1.2 minimum,
OpenSSL security level 3, no client certificate asked for. TLS 1.3, which OpenSSL's cipher list does not govern,
stays on as in MindSpore; its suites are all AEAD.

Rotation: `watch()` polls the p12 file (mtime, size, inode) and loads a replaced one into the same context, so the
next handshake presents the new certificate while open connections and running rounds go on. A replacement that
does not load (half written, wrong password, expired) is logged and the current certificate kept. The same loop
repeats the expiry warning daily for the server and CA certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mindfed.config.schema_cluster import TCP_CIPHERS, SSLConfig
from mindfed.errors import ConfigError
from mindfed.tls.expiry import CHECK_EVERY_S, expiry_warnings, load_ca_certs, warn_expiring
from mindfed.tls.identity import Identity, load_identity, subject_name, utc

logger = logging.getLogger(__name__)
SECURITY_LEVEL = 3  # MindSpore's kSecurityLevel: RSA/DH >= 3072 bits, ECC >= 256 bits
POLL_S = 5.0
_SHM = Path("/dev/shm")  # noqa: S108 - memory-backed: the (re-encrypted) key never reaches a disk


def check_ciphers(cipher_list: str) -> tuple[str, ...]:
    """The names in `cipher_list`; ConfigError naming the first one outside MindSpore's allow-list."""
    names = tuple(c.strip() for c in cipher_list.split(":") if c.strip())
    if not names:
        raise ConfigError("ssl.cipher_list is empty; give a ':'-separated list drawn from " + ", ".join(TCP_CIPHERS))
    for name in names:
        if name not in TCP_CIPHERS:
            raise ConfigError(f"ssl.cipher_list: The ciphter:{name} is not supported. Allowed: "
                              + ", ".join(TCP_CIPHERS))
    return names


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ServerTls:
    """The TLS side of one HTTPS server.

    Args:
        ssl_config: the YAML's `ssl:` section.
        password: the p12 password (SSLConfig.server_password or MINDFED_SSL_SERVER_PASSWORD); never logged.
        poll_s: how often `watch()` looks for a replaced p12 file.

    Raises:
        ConfigError: a cipher outside the allow-list, a missing p12 file, an empty or wrong password, a certificate
            not valid now, or a certificate OpenSSL refuses (key too small for security level 3, key mismatch).
    """

    def __init__(self, ssl_config: SSLConfig, password: str, poll_s: float = POLL_S, *, warn: bool = True) -> None:
        self._cfg, self._password, self.poll_s = ssl_config, password, poll_s
        self.path = Path(ssl_config.server_cert_path)
        names = check_ciphers(ssl_config.cipher_list)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_SINGLE_DH_USE | ssl.OP_SINGLE_ECDH_USE
        context.verify_mode = ssl.CERT_NONE  # devices present no certificate (MindSpore: none required)
        try:
            context.set_ciphers(":".join(names) + f":@SECLEVEL={SECURITY_LEVEL}")
        except ssl.SSLError as exc:
            raise ConfigError(f"ssl.cipher_list: SSL use set cipher list failed! ({exc.reason})") from None
        self.context = context
        self._stamp = _stamp(self.path)
        self.identity = self._load()
        self._install(self.identity)
        self.reloads = 0
        self._last_expiry_check = time.monotonic()
        if warn:
            self.check_expiry()

    def _load(self) -> Identity:
        return load_identity(self.path, self._password)

    def _install(self, identity: Identity) -> None:
        """Loads `identity` into the live context: later handshakes present it."""
        token = secrets.token_bytes(32)  # the key crosses the file system only encrypted, under a one-time password
        key_pem = identity.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(token))
        chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (identity.cert, *identity.chain))
        with tempfile.TemporaryDirectory(prefix="mindfed-tls-", dir=_SHM if _SHM.is_dir() else None) as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(chain_pem)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key_pem)
            try:
                self.context.load_cert_chain(cert_file, key_file, password=token)
            except ssl.SSLError as exc:
                raise ConfigError(f"ssl.server_cert_path {identity.path}: SSL use certificate chain file failed! "
                                  f"({exc.reason or exc}; security level {SECURITY_LEVEL} needs RSA >= 3072 bits or "
                                  "ECC >= 256 bits)") from None

    def check_expiry(self, log: bool = True) -> list[str]:
        """Warns (and returns the warnings) for the server and CA certificates that expire soon."""
        certs = [(f"ssl.server_cert_path {self.path}", self.identity.cert)]
        if self._cfg.ca_cert_path:
            certs += [(f"ssl.ca_cert_path {self._cfg.ca_cert_path}", c) for c in load_ca_certs(self._cfg.ca_cert_path)]
        days = self._cfg.cert_expire_warning_time_in_day
        return warn_expiring(certs, days) if log else expiry_warnings(certs, days)

    def reload(self) -> str:
        """Loads the p12 file again, whether or not it changed (SIGHUP, `mindfed.tls.rotation`); returns what new
        connections present now (subject, serial, end date: nothing secret).

        Raises:
            ConfigError: the file cannot be used (half written, wrong password, expired); the current certificate
                stays live.
        """
        self._stamp = _stamp(self.path)
        try:
            identity = self._load()
            self._install(identity)
        except OSError as exc:
            raise ConfigError(f"ssl.server_cert_path {self.path}: cannot be read ({exc.strerror})") from None
        self.identity = identity
        self.reloads += 1
        self.check_expiry()
        return (f"{self.path}: {subject_name(identity.cert)} (serial {identity.cert.serial_number:x}, not after "
                f"{utc(identity.cert.not_valid_after_utc)})")

    def reload_if_changed(self) -> bool:
        """Loads the p12 file again if it changed since the last look; True when a new certificate is live."""
        stamp = _stamp(self.path)
        if stamp is None or stamp == self._stamp:
            return False
        try:
            live = self.reload()
        except ConfigError as exc:
            logger.error("%s changed but cannot be used; keeping the current certificate: %s", self.path, exc)
            return False
        logger.info("reloaded %s: new connections present it", live)
        return True

    async def watch(self) -> None:
        """Runs until cancelled: rotation every `poll_s`, the expiry warning every day."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                self.reload_if_changed()
                if time.monotonic() - self._last_expiry_check >= CHECK_EVERY_S:
                    self._last_expiry_check = time.monotonic()
                    self.check_expiry()
            except Exception:  # the watcher must outlive any surprise; the current certificate stays
                logger.exception("certificate watch of %s failed", self.path)

    def start_watch(self) -> asyncio.Task[None]:
        """The `watch()` loop as a task of the running loop (cancel it on stop)."""
        return asyncio.get_running_loop().create_task(self.watch(), name="tls-watch")


async def stop_watch(task: asyncio.Task[None] | None) -> None:
    """Cancels a `start_watch()` task and waits for it."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def check_server_material(ssl_config: SSLConfig, password: str) -> list[str]:
    """What `mindfed config check` says of the HTTPS material: with a password, everything a start checks (p12,
    password, dates, key strength, ciphers) and the expiry warnings; without one, the ciphers and that the p12 file
    exists, and a note that the rest was not checked.

    Raises:
        ConfigError: what the server's start would refuse.
    """
    check_ciphers(ssl_config.cipher_list)
    if not password:
        if not Path(ssl_config.server_cert_path).is_file():
            raise ConfigError(f"ssl.server_cert_path: The file path of server_cert_path {ssl_config.server_cert_path} "
                              "is not exist.")
        return [f"ssl.server_cert_path {ssl_config.server_cert_path}: not decrypted (no MINDFED_SSL_SERVER_PASSWORD "
                "or MINDFED_SSL_SERVER_PASSWORD_FILE): its password, dates and key were not checked"]
    return ServerTls(ssl_config, password, warn=False).check_expiry(log=False)
