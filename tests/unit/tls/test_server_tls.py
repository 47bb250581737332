"""mindfed.tls on real certificates (made here with `cryptography`) and real TLS handshakes over loopback: MindSpore's
start-up errors and texts, the cipher allow-list, TLS 1.2 minimum, the expiry warning and rotation in place."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import ssl
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from mindfed.api.ssl_config import DEFAULT_CIPHER_LIST
from mindfed.config import load
from mindfed.config.schema_cluster import SSLConfig
from mindfed.errors import ConfigError
from mindfed.tls.client import client_context
from mindfed.tls.dev_certs import DevCA, DevCertSet, write_dev_certs
from mindfed.tls.identity import EMPTY_PASSWORD, PARSE_FAILED
from mindfed.tls.passwords import SERVER_PASSWORD_ENV, password_from_env
from mindfed.tls.server_context import ServerTls, check_ciphers

LENET_YAML = Path(__file__).resolve().parents[3] / "yamls" / "lenet.yaml"
SERVER_PASSWORD = "server_password_12345"  # MindSpore's generate_certs.sh passwords
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def certs(tmp_path: Path) -> DevCertSet:
    return write_dev_certs(tmp_path, SERVER_PASSWORD, "client_password_12345")


def ssl_section(certs: DevCertSet, **kw: object) -> SSLConfig:
    values: dict[str, object] = {"server_cert_path": str(certs.server_cert_path),
                                 "client_cert_path": str(certs.client_cert_path),
                                 "ca_cert_path": str(certs.ca_cert_path), "cipher_list": DEFAULT_CIPHER_LIST}
    values.update(kw)
    return SSLConfig(**values)  # type: ignore[arg-type]


async def peer_certificate(tls: ServerTls, client: ssl.SSLContext) -> x509.Certificate:
    """Serves one handshake with `tls.context` on a loopback port and returns the certificate the client saw."""
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, ssl=tls.context)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
        return x509.load_der_x509_certificate(der)
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------------------------- start-up errors


def test_an_empty_password_is_refused_with_mindspores_text(certs: DevCertSet) -> None:
    with pytest.raises(ConfigError) as exc:
        ServerTls(ssl_section(certs), "")
    assert EMPTY_PASSWORD in str(exc.value)
    assert str(certs.server_cert_path) in str(exc.value)


def test_a_wrong_password_is_refused_with_mindspores_text_and_never_echoed(certs: DevCertSet) -> None:
    with pytest.raises(ConfigError) as exc:
        ServerTls(ssl_section(certs), "wrong_password_6789")
    assert PARSE_FAILED in str(exc.value)
    assert str(certs.server_cert_path) in str(exc.value)
    assert "wrong_password_6789" not in str(exc.value)


def test_a_missing_or_non_pkcs12_file_is_named(certs: DevCertSet, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not exist"):
        ServerTls(ssl_section(certs, server_cert_path=str(tmp_path / "absent.p12")), SERVER_PASSWORD)
    with pytest.raises(ConfigError, match="Create PKCS12 cert failed"):
        ServerTls(ssl_section(certs, server_cert_path=str(certs.ca_cert_path)), SERVER_PASSWORD)  # a PEM file


@pytest.mark.parametrize(("start_days", "end_days", "says"), [(-30, -1, "has expired"), (1, 30, "not valid yet")])
def test_a_certificate_outside_its_validity_refuses_to_start_naming_file_and_dates(
        certs: DevCertSet, start_days: int, end_days: int, says: str) -> None:
    start, end = NOW + dt.timedelta(days=start_days), NOW + dt.timedelta(days=end_days)
    certs.ca.write_p12(certs.server_cert_path, SERVER_PASSWORD, "mindfed server", start, end)
    with pytest.raises(ConfigError) as exc:
        ServerTls(ssl_section(certs), SERVER_PASSWORD)
    message = str(exc.value)
    assert "Verify Cert Time failed." in message
    assert says in message
    assert str(certs.server_cert_path) in message
    assert f"{start:%Y-%m-%d %H:%M}" in message
    assert f"{end:%Y-%m-%d %H:%M}" in message


@pytest.mark.parametrize("bad", ["AES128-SHA", "ECDHE-RSA-AES128-SHA256", "DHE-RSA-AES128-GCM-SHA256"])
def test_a_cipher_outside_the_allow_list_is_refused_naming_it(certs: DevCertSet, bad: str) -> None:
    with pytest.raises(ConfigError, match=f"The ciphter:{bad} is not supported"):
        check_ciphers(f"ECDHE-ECDSA-AES128-GCM-SHA256:{bad}")
    with pytest.raises(ConfigError, match=bad):  # the YAML layer refuses it first, naming it
        load(LENET_YAML, {**certs.yaml_overrides(), "ssl.cipher_list": bad})
    with pytest.raises(ConfigError, match=bad):  # and the TLS layer on its own
        ServerTls(ssl_section(certs, cipher_list=bad), SERVER_PASSWORD)


def test_a_key_below_security_level_3_is_refused(certs: DevCertSet) -> None:
    key = rsa.generate_private_key(65537, 2048)  # MindSpore's level 3 wants RSA >= 3072
    weak = (x509.CertificateBuilder().subject_name(certs.ca.cert.subject).issuer_name(certs.ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
            .sign(certs.ca.key, hashes.SHA256()))
    certs.server_cert_path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"weak", key, weak, None, serialization.BestAvailableEncryption(SERVER_PASSWORD.encode())))
    with pytest.raises(ConfigError, match="SSL use certificate chain file failed"):
        ServerTls(ssl_section(certs), SERVER_PASSWORD)


# ------------------------------------------------------------------------------------- handshakes


async def test_devices_see_the_server_certificate_and_tls_below_1_2_is_refused(certs: DevCertSet) -> None:
    tls = ServerTls(ssl_section(certs), SERVER_PASSWORD)
    seen = await peer_certificate(tls, client_context(certs.ca_cert_path))
    assert seen.serial_number == tls.identity.cert.serial_number
    old = client_context(certs.ca_cert_path)
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await peer_certificate(tls, old)


async def test_only_the_configured_ciphers_are_negotiated_on_tls_1_2(certs: DevCertSet) -> None:
    tls = ServerTls(ssl_section(certs, cipher_list="ECDHE-ECDSA-AES128-GCM-SHA256"), SERVER_PASSWORD)
    client = client_context(certs.ca_cert_path)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")  # allowed by MindSpore, not configured here
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await peer_certificate(tls, client)
    client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert (await peer_certificate(tls, client)).serial_number == tls.identity.cert.serial_number


async def test_a_client_without_the_ca_refuses_the_server(certs: DevCertSet) -> None:
    tls = ServerTls(ssl_section(certs), SERVER_PASSWORD)
    stranger = DevCA.create("another CA").write_ca(certs.ca_cert_path.with_name("other.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        await peer_certificate(tls, client_context(stranger))


async def test_a_replaced_p12_is_presented_to_new_connections_and_a_bad_one_is_not(
        certs: DevCertSet, caplog: pytest.LogCaptureFixture) -> None:
    tls = ServerTls(ssl_section(certs), SERVER_PASSWORD)
    client = client_context(certs.ca_cert_path)
    first = tls.identity.cert.serial_number
    assert not tls.reload_if_changed()  # unchanged file: nothing to do
    certs.ca.write_p12(certs.server_cert_path, SERVER_PASSWORD, "mindfed server rotated")
    assert tls.reload_if_changed()
    second = (await peer_certificate(tls, client)).serial_number
    assert second != first
    assert second == tls.identity.cert.serial_number
    certs.ca.write_p12(certs.server_cert_path, "another password", "mindfed server bad")
    with caplog.at_level(logging.ERROR):
        assert not tls.reload_if_changed()
    assert "keeping the current certificate" in caplog.text
    assert PARSE_FAILED in caplog.text
    assert (await peer_certificate(tls, client)).serial_number == second


async def test_the_watch_loop_picks_a_replacement_up(certs: DevCertSet) -> None:
    tls = ServerTls(ssl_section(certs), SERVER_PASSWORD, poll_s=0.02)
    task = tls.start_watch()
    try:
        certs.ca.write_p12(certs.server_cert_path, SERVER_PASSWORD, "mindfed server rotated")
        async with asyncio.timeout(5):
            while tls.reloads == 0:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    seen = await peer_certificate(tls, client_context(certs.ca_cert_path))
    assert seen.serial_number == tls.identity.cert.serial_number


# ------------------------------------------------------------------------------------- expiry warning


def test_the_expiry_warning_names_the_server_certificate_with_few_days_left(
        certs: DevCertSet, caplog: pytest.LogCaptureFixture) -> None:
    certs.ca.write_p12(certs.server_cert_path, SERVER_PASSWORD, "mindfed server", None, NOW + dt.timedelta(days=30))
    with caplog.at_level(logging.WARNING):
        tls = ServerTls(ssl_section(certs, cert_expire_warning_time_in_day=90), SERVER_PASSWORD)
    found = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(found) == 1, found  # the CA has 10 years left
    assert str(certs.server_cert_path) in found[0]
    assert re.search(r"expires in (29\.9|30\.0) days", found[0])
    assert "cert_expire_warning_time_in_day = 90" in found[0]
    assert len(tls.check_expiry()) == 1  # the daily check says it again
    assert ServerTls(ssl_section(certs, cert_expire_warning_time_in_day=7), SERVER_PASSWORD).check_expiry() == []


def test_the_ca_certificate_is_checked_too(certs: DevCertSet, tmp_path: Path) -> None:
    ca_file = DevCA.create("short CA", days=20).write_ca(tmp_path / "short_ca.crt")
    tls = ServerTls(ssl_section(certs, ca_cert_path=str(ca_file), cert_expire_warning_time_in_day=30),
                    SERVER_PASSWORD)
    found = tls.check_expiry()
    assert len(found) == 1
    assert str(ca_file) in found[0]
    assert "short CA" in found[0]


def test_the_daily_check_runs_from_the_watch_loop(certs: DevCertSet, monkeypatch: pytest.MonkeyPatch) -> None:
    from mindfed.tls import server_context

    tls = ServerTls(ssl_section(certs, cert_expire_warning_time_in_day=180), SERVER_PASSWORD, poll_s=0.01)
    calls: list[int] = []
    monkeypatch.setattr(server_context, "CHECK_EVERY_S", 0.0)
    monkeypatch.setattr(tls, "check_expiry", lambda: calls.append(1) or [])

    async def run() -> None:
        task = tls.start_watch()
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(run())
    assert len(calls) >= 2


# ------------------------------------------------------------------------------------- passwords


def test_passwords_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert password_from_env(SERVER_PASSWORD_ENV, {}) == ""
    assert password_from_env(SERVER_PASSWORD_ENV, {SERVER_PASSWORD_ENV: "pw"}) == "pw"
    secret = tmp_path / "pw.txt"
    secret.write_text("from file\n")
    assert password_from_env(SERVER_PASSWORD_ENV, {f"{SERVER_PASSWORD_ENV}_FILE": str(secret)}) == "from file"
    with pytest.raises(ConfigError, match="both"):
        password_from_env(SERVER_PASSWORD_ENV, {SERVER_PASSWORD_ENV: "a", f"{SERVER_PASSWORD_ENV}_FILE": str(secret)})
    with pytest.raises(ConfigError, match="cannot read") as exc:
        password_from_env(SERVER_PASSWORD_ENV, {f"{SERVER_PASSWORD_ENV}_FILE": str(tmp_path / "absent")})
    assert "from file" not in str(exc.value)


def test_server_options_never_show_the_passwords() -> None:
    from mindfed.server.node import ServerOptions

    options = ServerOptions(http_server_address="127.0.0.1:0", ssl_server_password="s3cret-A",
                            ssl_client_password="s3cret-B")
    assert "s3cret" not in repr(options)
