"""Mutual TLS on the node transport, with real certificates (tests/tls_certs.py) and real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from tests.tls_certs import CLIENT_PASSWORD, SERVER_PASSWORD, Pki

from mindfed import _core
from mindfed.errors import NetworkError
from mindfed.net import Frame, TcpEndpoint

TIMEOUT_S = 10.0


async def echo_head(frame: Frame) -> bytes:
    return bytes(frame.payload[:16]) + len(frame.payload).to_bytes(8, "little")


@asynccontextmanager
async def serving(tls: _core.net.TlsOptions | None) -> AsyncIterator[tuple[TcpEndpoint, str]]:
    async with TcpEndpoint.open(tls=tls) as server:
        server.on_request(echo_head)
        yield server, f"127.0.0.1:{server.port}"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "ca")


async def test_mutual_tls_round_trip_of_small_and_40_mb_frames(pki: Pki) -> None:
    # Prepare
    partial = np.arange(10_000_000, dtype=np.float32)
    async with serving(pki.node("server").options) as (_, address), \
            TcpEndpoint.open(tls=pki.node("client").options) as client:
        # Execute
        small = await client.request(address, 1, b"hello", TIMEOUT_S)
        large = await client.request(address, 1, partial, TIMEOUT_S)
        again = await client.request(address, 1, partial[::-1].copy(), TIMEOUT_S)
    # Assert
    assert bytes(small.payload) == b"hello" + (5).to_bytes(8, "little")
    assert bytes(large.payload) == partial.tobytes()[:16] + (40_000_000).to_bytes(8, "little")
    assert bytes(again.payload)[:16] == partial[::-1].tobytes()[:16]


async def test_many_frames_both_ways_arrive_in_order(pki: Pki) -> None:
    async with serving(pki.node("server").options) as (_, address), \
            TcpEndpoint.open(tls=pki.node("client").options) as client:
        payloads = [np.full(1000 * (i + 1), i, np.uint8) for i in range(40)]
        replies = await asyncio.gather(*(client.request(address, 1, p, TIMEOUT_S) for p in payloads))
    for p, reply in zip(payloads, replies, strict=True):
        assert bytes(reply.payload)[16:] == len(p).to_bytes(8, "little")


async def test_a_client_certificate_from_another_ca_is_refused(pki: Pki, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: the intruder trusts our CA (so it would accept the server) but its own certificate is foreign
    foreign = Pki(tmp_path / "foreign", "other CA")
    intruder = foreign.node("intruder", ca=pki.ca_path).options
    async with serving(pki.node("server").options) as (_, address), TcpEndpoint.open(tls=intruder) as client:
        # Execute / Assert
        with caplog.at_level(logging.WARNING), pytest.raises(NetworkError):
            await client.request(address, 1, np.ones(1 << 20, np.uint8), TIMEOUT_S)
        await asyncio.sleep(0.1)
    assert "unable to get local issuer certificate" in caplog.text  # the server's log line names the cause


async def test_a_server_certificate_from_another_ca_is_refused_before_anything_is_sent(pki: Pki,
                                                                                       tmp_path: Path) -> None:
    foreign = Pki(tmp_path / "foreign", "other CA")
    async with serving(foreign.node("rogue", ca=pki.ca_path).options) as (rogue, address), \
            TcpEndpoint.open(tls=pki.node("client").options) as client:
        with pytest.raises(NetworkError, match="TLS handshake with .* failed: .*certificate verify failed"):
            await client.request(address, 1, b"partial sums", TIMEOUT_S)
        assert rogue.inbox.empty()


async def test_a_revoked_peer_is_refused_and_only_with_the_crl(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    revoked = pki.node("revoked")
    crl = pki.crl(revoked.certs)
    server_without_crl = pki.node("server0").options
    server = pki.node("server", crl=crl).options
    # Execute / Assert: without the CRL the certificate is fine, with it the handshake fails
    async with serving(server_without_crl) as (_, address), TcpEndpoint.open(tls=revoked.options) as client:
        assert len((await client.request(address, 1, b"x", TIMEOUT_S)).payload) == 9
    async with serving(server) as (_, address), TcpEndpoint.open(tls=revoked.options) as client:
        with caplog.at_level(logging.WARNING), pytest.raises(NetworkError):
            await client.request(address, 1, b"x", TIMEOUT_S)
        await asyncio.sleep(0.1)
    assert "certificate revoked" in caplog.text


async def test_a_revoked_server_is_refused_by_a_client_with_the_crl(pki: Pki) -> None:
    revoked = pki.node("revoked")
    crl = pki.crl(revoked.certs)
    async with serving(revoked.options) as (_, address), \
            TcpEndpoint.open(tls=pki.node("client", crl=crl).options) as client:
        with pytest.raises(NetworkError, match="certificate revoked"):
            await client.request(address, 1, b"x", TIMEOUT_S)


async def test_honest_peers_still_connect_while_a_crl_is_enforced(pki: Pki) -> None:
    crl = pki.crl([pki.node("someone-else").certs[1]])
    async with serving(pki.node("server", crl=crl).options) as (_, address), \
            TcpEndpoint.open(tls=pki.node("client", crl=crl).options) as client:
        assert len((await client.request(address, 1, b"ok", TIMEOUT_S)).payload) == 10


async def test_a_plain_client_cannot_talk_to_a_tls_node_nor_the_reverse(pki: Pki) -> None:
    async with serving(pki.node("server").options) as (_, address), TcpEndpoint.open() as plain:
        with pytest.raises(NetworkError):
            await plain.request(address, 1, b"x", 2.0)
    async with serving(None) as (_, address), TcpEndpoint.open(tls=pki.node("client").options) as client:
        with pytest.raises(NetworkError):
            await client.request(address, 1, b"x", 2.0)


def test_a_wrong_password_is_mindspores_pkcs12_parse_failed_and_never_shows_the_password(pki: Pki) -> None:
    node = pki.node("n")
    wrong = Pki.options(node.server_p12, node.client_p12, pki.ca_path)
    bad = _core.net.TlsOptions(server_cert_path=wrong.server_cert_path, server_password="not-the-password-42",
                               client_cert_path=wrong.client_cert_path, client_password=CLIENT_PASSWORD,
                               ca_cert_path=wrong.ca_cert_path)
    with pytest.raises(NetworkError, match="PKCS12_parse failed") as caught:
        _core.net.Node("127.0.0.1", tls=bad)
    assert str(node.server_p12) in str(caught.value)
    assert "not-the-password-42" not in str(caught.value)
    assert "not-the-password-42" not in repr(bad)


def test_an_empty_password_and_missing_files_are_clear_errors(pki: Pki, tmp_path: Path) -> None:
    node = pki.node("n")

    def options(**changes: str) -> _core.net.TlsOptions:
        fields = {"server_cert_path": str(node.server_p12), "server_password": SERVER_PASSWORD,
                  "client_cert_path": str(node.client_p12), "client_password": CLIENT_PASSWORD,
                  "ca_cert_path": str(pki.ca_path)} | changes
        return _core.net.TlsOptions(**fields)

    cases = {"The client password's value is empty": options(client_password=""),
             "cannot load the CA certificate": options(ca_cert_path=str(tmp_path / "none.pem")),
             "cannot open the CRL": options(crl_path=str(tmp_path / "none.pem")),
             "no cipher of ssl.cipher_list": options(cipher_list="NOT-A-CIPHER"),
             "is not a PKCS#12 file": options(server_cert_path=str(pki.ca_path))}
    for message, tls in cases.items():
        with pytest.raises(NetworkError, match=message):
            _core.net.Node("127.0.0.1", tls=tls)
