"""Validation of the scheduler's `manage_address`, with MindSpore's messages (spec §1.1, §14)."""

from __future__ import annotations

from mindfed.address import Address, AddressError, Hosts
from mindfed.errors import ConfigError

INVALID_ADDRESS = "Failed to start scheduler http server, invalid server address: {}"


def validate_manage_address(manage_address: object) -> tuple[str, int]:
    """Split `ip:port` (IPv4, or IPv6 in brackets) the way MindSpore's `CommUtil::SplitIpAddress` accepts it.

    Args:
        manage_address: the `--scheduler_manage_address` value. Port 0 asks the OS for a free port.

    Returns:
        (ip, port).

    Raises:
        TypeError: `manage_address` is not a str ("Parameter 'manage_address' should be str").
        ConfigError: a missing or non-numeric port, a port above 65535, or a host that is not an IP address.
    """
    if not isinstance(manage_address, str):
        raise TypeError("Parameter 'manage_address' should be str")
    try:
        parsed = Address.parse(manage_address, hosts=Hosts.IP)
    except AddressError:
        raise ConfigError(INVALID_ADDRESS.format(manage_address)) from None
    return parsed.host, parsed.port
