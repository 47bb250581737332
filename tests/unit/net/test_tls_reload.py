"""Node.reload_tls: the node transport's certificates, CA and CRL replaced while it runs (real certificates from
tests/tls_certs.py, real loopback sockets)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from tests.tls_certs import CLIENT_PASSWORD, Pki

from mindfed import _core
from mindfed.errors import NetworkError
from mindfed.net import Frame, TcpEndpoint

TIMEOUT_S = 10.0


async def echo(frame: Frame) -> bytes:
    return bytes(frame.payload)


def pem_pair(p12: Path, password: str, out: Path) -> tuple[Path, Path]:
    """The certificate and key of `p12` as PEM files (for Python's ssl module)."""
    key, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), password.encode())
    assert key is not None
    assert cert is not None
    cert_file, key_file = out.with_suffix(".crt"), out.with_suffix(".key")
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def presented(port: int, ca: Path, client: tuple[Path, Path]) -> x509.Certificate:
    """The certificate a new TLS connection to 127.0.0.1:port is shown (this end presents `client`)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    context.load_cert_chain(*client)
    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=context), TIMEOUT_S)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "ca")


async def test_new_connections_see_the_new_certificate_and_an_open_one_keeps_working(pki: Pki,
                                                                                     tmp_path: Path) -> None:
    # Prepare: a client connected before the reload
    old, new = pki.node("s-old"), pki.node("s-new")
    probe = pem_pair(pki.node("probe").client_p12, CLIENT_PASSWORD, tmp_path / "probe")
    async with TcpEndpoint.open(tls=old.options) as server, TcpEndpoint.open(tls=pki.node("a").options) as early:
        server.on_request(echo)
        address = f"127.0.0.1:{server.port}"
        assert bytes((await early.request(address, 1, b"before", TIMEOUT_S)).payload) == b"before"
        assert (await presented(server.port, pki.ca_path, probe)).serial_number == old.certs[0].serial_number
        # Execute
        server.reload_tls(new.options)
        # Assert: the open connection goes on (large frames too); new ones are shown the new certificate
        assert bytes((await early.request(address, 1, b"after", TIMEOUT_S)).payload) == b"after"
        big = bytes(range(256)) * 4096
        assert bytes((await early.request(address, 1, big, TIMEOUT_S)).payload) == big
        assert (await presented(server.port, pki.ca_path, probe)).serial_number == new.certs[0].serial_number
        async with TcpEndpoint.open(tls=pki.node("b").options) as late:
            assert bytes((await late.request(address, 1, b"late", TIMEOUT_S)).payload) == b"late"


async def test_a_bad_replacement_is_refused_and_the_old_material_stays(pki: Pki, tmp_path: Path) -> None:
    node = pki.node("s")
    probe = pem_pair(pki.node("probe").client_p12, CLIENT_PASSWORD, tmp_path / "probe")
    broken = tmp_path / "broken.p12"
    broken.write_bytes(node.server_p12.read_bytes()[:100])  # half written
    async with TcpEndpoint.open(tls=node.options) as server, TcpEndpoint.open(tls=pki.node("c").options) as client:
        server.on_request(echo)
        address = f"127.0.0.1:{server.port}"
        await client.request(address, 1, b"x", TIMEOUT_S)
        with pytest.raises(NetworkError, match="is not a PKCS#12 file"):
            server.reload_tls(pki.options(broken, node.client_p12, pki.ca_path))
        with pytest.raises(NetworkError, match="PKCS12_parse failed"):
            server.reload_tls(_core.net.TlsOptions(
                server_cert_path=str(node.server_p12), server_password="not the password",
                client_cert_path=str(node.client_p12), client_password=CLIENT_PASSWORD,
                ca_cert_path=str(pki.ca_path)))
        with pytest.raises(NetworkError, match="cannot load the CA certificate"):
            server.reload_tls(pki.options(node.server_p12, node.client_p12, tmp_path / "absent.pem"))
        # the old material is still what new connections get, and they work
        assert (await presented(server.port, pki.ca_path, probe)).serial_number == node.certs[0].serial_number
        async with TcpEndpoint.open(tls=pki.node("d").options) as fresh:
            assert bytes((await fresh.request(address, 1, b"ok", TIMEOUT_S)).payload) == b"ok"
        assert bytes((await client.request(address, 1, b"still", TIMEOUT_S)).payload) == b"still"


async def test_a_new_crl_refuses_the_revoked_peers_next_connection(pki: Pki) -> None:
    # Prepare: the peer is connected before its certificate is revoked
    server_node, peer = pki.node("s"), pki.node("peer")
    crl = pki.crl([peer.certs[1]])  # the peer's client certificate
    async with TcpEndpoint.open(tls=server_node.options) as server, TcpEndpoint.open(tls=peer.options) as open_peer:
        server.on_request(echo)
        address = f"127.0.0.1:{server.port}"
        await open_peer.request(address, 1, b"x", TIMEOUT_S)
        # Execute
        server.reload_tls(pki.options(server_node.server_p12, server_node.client_p12, pki.ca_path, crl))
        # Assert: its next connection is refused; its open one is untouched, an unrevoked peer still connects
        async with TcpEndpoint.open(tls=peer.options) as again:
            with pytest.raises(NetworkError, match="TLS"):
                await again.request(address, 1, b"y", TIMEOUT_S)
        assert bytes((await open_peer.request(address, 1, b"open", TIMEOUT_S)).payload) == b"open"
        async with TcpEndpoint.open(tls=pki.node("honest").options) as honest:
            assert bytes((await honest.request(address, 1, b"ok", TIMEOUT_S)).payload) == b"ok"


async def test_a_new_ca_bundle_admits_the_new_ca_and_dropping_the_old_ca_refuses_it(pki: Pki, tmp_path: Path) -> None:
    # Prepare: a new CA; a bundle of both for the switch
    new_ca = Pki(tmp_path / "new", "new CA")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.ca_path.read_bytes() + new_ca.ca_path.read_bytes())
    server_node = pki.node("s")
    async with TcpEndpoint.open(tls=server_node.options) as server:
        server.on_request(echo)
        address = f"127.0.0.1:{server.port}"
        # Execute / Assert: with the bundle, peers of both CAs connect (each trusting both)
        server.reload_tls(pki.options(server_node.server_p12, server_node.client_p12, bundle))
        for issuer in (pki, new_ca):
            async with TcpEndpoint.open(tls=issuer.node(f"p{id(issuer)}", ca=bundle).options) as peer:
                assert bytes((await peer.request(address, 1, b"ok", TIMEOUT_S)).payload) == b"ok"
        # the server moves to the new CA alone: an old-CA peer is refused, a new-CA one connects
        renewed = new_ca.node("s2")
        server.reload_tls(new_ca.options(renewed.server_p12, renewed.client_p12, new_ca.ca_path))
        async with TcpEndpoint.open(tls=pki.node("old", ca=bundle).options) as stale:
            with pytest.raises(NetworkError, match="TLS"):
                await stale.request(address, 1, b"no", TIMEOUT_S)
        async with TcpEndpoint.open(tls=new_ca.node("p-new").options) as peer:
            assert bytes((await peer.request(address, 1, b"ok", TIMEOUT_S)).payload) == b"ok"


async def test_a_plain_node_cannot_take_certificates(pki: Pki) -> None:
    async with TcpEndpoint.open() as plain:
        with pytest.raises(NetworkError, match="started without TLS"):
            plain.reload_tls(pki.node("s").options)
