"""Validation of the scheduler's `manage_address`, with MindSpore's messages (spec §1.1, §14)."""

from __future__ import annotations

import ipaddress

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
    host, sep, port = manage_address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ConfigError(INVALID_ADDRESS.format(manage_address))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(INVALID_ADDRESS.format(manage_address)) from None
    return host, int(port)
