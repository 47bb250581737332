"""`mindfed.address.Address`: the one parser of `host:port` (IPv4, bracketed IPv6, host names where allowed)."""

from __future__ import annotations

import pytest

from mindfed.address import Address, AddressError, Hosts
from mindfed.errors import ConfigError


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:6666", "127.0.0.1", 6666),
    ("0.0.0.0:0", "0.0.0.0", 0),
    ("[::1]:6379", "::1", 6379),
    ("[fe80::1]:65535", "fe80::1", 65535),
    ("redis.default.svc.cluster.local:6379", "redis.default.svc.cluster.local", 6379),
    ("localhost:1", "localhost", 1),
])
def test_parses_and_writes_back(text: str, host: str, port: int) -> None:
    address = Address.parse(text)

    assert (address.host, address.port) == (host, port)
    assert str(address) == text
    assert Address.parse(str(address)) == address


@pytest.mark.parametrize("text", [
    "", "6666", "127.0.0.1", "127.0.0.1:", ":6666", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:6x",
    "127.0.0.1:٦", "::1:6666", "[127.0.0.1]:80", "[::1:80", "bad_name:80", "-x.example:80", "1.2.3.999:80",
    "a..b:80", f"{'a' * 64}.example:80",
])
def test_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(AddressError, match=r"is not an address; allowed: host:port with .* and a port in \[0, 65535\]"):
        Address.parse(text)


def test_the_callers_rules():
    assert Address.parse("10.0.0.1:80", hosts=Hosts.IPV4).port == 80
    for text in ("[::1]:80", "localhost:80"):
        with pytest.raises(AddressError, match="a literal IPv4 address"):
            Address.parse(text, hosts=Hosts.IPV4)
    assert Address.parse("[::1]:80", hosts=Hosts.IP).is_ipv6
    with pytest.raises(AddressError, match="an IPv4 address or an IPv6 address in brackets"):
        Address.parse("localhost:80", hosts=Hosts.IP)
    with pytest.raises(AddressError, match=r"a port in \[1, 65535\]"):
        Address.parse("127.0.0.1:0", min_port=1)


def test_with_port_keeps_the_brackets():
    assert str(Address.parse("[::1]:0").with_port(7000)) == "[::1]:7000"


@pytest.mark.parametrize(("text", "host"), [
    ("my_redis:6379", "my_redis"),  # a Docker Compose service name
    ("proj_redis_1.net:6379", "proj_redis_1.net"),
    ("::1:6379", "::1"),  # the last colon is the port's, as redis-server writes `--bind ::1` in its title
    ("fe80::1%eth0:6379", "fe80::1%eth0"),
    ("[::1]:6379", "::1"),
    ("127.0.0.1:6379", "127.0.0.1"),
])
def test_a_redis_address_takes_what_the_resolver_takes(text: str, host: str) -> None:
    address = Address.parse(text, hosts=Hosts.RESOLVABLE, min_port=1)

    assert (address.host, address.port) == (host, 6379)
    assert Address.parse(str(address), hosts=Hosts.RESOLVABLE) == address  # written back in brackets if IPv6


@pytest.mark.parametrize("text", ["bad host:6379", "1.2.3.999:6379", ":6379", "::1", "-x:6379", "[my_redis]:6379"])
def test_a_redis_address_still_refuses_what_no_resolver_takes(text: str) -> None:
    with pytest.raises(AddressError, match=r"an IPv6 address \(brackets optional\) or a host name \(underscores"):
        Address.parse(text, hosts=Hosts.RESOLVABLE, min_port=1)


def test_an_address_error_is_a_config_error():
    # Callers that do not name the key (the launcher, the demo) still reach the CLI's config exit.
    with pytest.raises(ConfigError):
        Address.parse("127.0.0.1:x")
