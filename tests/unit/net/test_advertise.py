"""The node transport's advertised address (`--tcp_server_ip`), and the transport over IPv6."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest

from mindfed.errors import ConfigError, NetworkError
from mindfed.net import advertise
from mindfed.net.advertise import advertised_tcp_host, first_non_loopback_ipv4
from mindfed.net.endpoint import Frame, TcpEndpoint


@pytest.mark.parametrize("text", ["0.0.0.0", "::", "[::]"])
def test_a_wildcard_is_refused_as_an_advertised_address(text: str) -> None:
    with pytest.raises(ConfigError, match="wildcard, not an address peers can reach"):
        advertised_tcp_host(text)


@pytest.mark.parametrize(("text", "ip"), [("127.0.0.1", "127.0.0.1"), ("10.77.0.2", "10.77.0.2"), ("::1", "::1"),
                                          ("[::1]", "::1"), ("localhost", "127.0.0.1")])
def test_literals_are_kept_and_host_names_resolved(text: str, ip: str) -> None:
    assert advertised_tcp_host(text) == ip


@pytest.mark.parametrize("text", ["1.2.3.999", "a b", "host:1", "-x"])
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="tcp_server_ip"):
        advertised_tcp_host(text)


def test_an_unknown_host_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not resolve"):
        advertised_tcp_host("no-such-host.invalid")


def test_no_address_takes_the_first_non_loopback_ipv4_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    found = first_non_loopback_ipv4()
    with caplog.at_level(logging.INFO, logger=advertise.__name__):
        ip = advertised_tcp_host("")
    if found is None:
        assert ip == "127.0.0.1"
    else:
        assert ip == found[1]
        assert not ipaddress.ip_address(ip).is_loopback
    assert f"advertising {ip}" in caplog.text


def test_loopback_when_the_host_has_no_other_address(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(advertise, "first_non_loopback_ipv4", lambda: None)
    with caplog.at_level(logging.INFO, logger=advertise.__name__):
        assert advertised_tcp_host("") == "127.0.0.1"
    assert "no non-loopback IPv4 address" in caplog.text


def test_the_transport_listens_and_connects_over_ipv6() -> None:
    async def main() -> tuple[bytes, str]:
        server, client = TcpEndpoint.open("::1", 0), TcpEndpoint.open("::1", 0)
        peers: list[str] = []

        async def echo(frame: Frame) -> bytes:
            peers.append(frame.peer)
            return bytes(frame.payload) + b"!"

        server.on_request(echo)
        try:
            reply = await client.request(f"[::1]:{server.port}", 7, b"hi", 5)
            return bytes(reply.payload), peers[0]
        finally:
            server.close()
            client.close()

    try:
        body, peer = asyncio.run(main())
    except NetworkError as exc:  # pragma: no cover - a host without IPv6 loopback (cannot bind ::1)
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert body == b"hi!"
    assert peer.startswith("[::1]:")


def test_a_fixed_port_is_listened_on() -> None:
    async def main() -> int:
        probe = TcpEndpoint.open("127.0.0.1", 0)
        port = probe.port
        probe.close()
        fixed = TcpEndpoint.open("127.0.0.1", port)
        try:
            return fixed.port if fixed.port == port else -1
        finally:
            fixed.close()

    assert asyncio.run(main()) > 0
