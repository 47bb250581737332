"""Parameter checks with MindSpore Federated's texts (`common/check_type.py`, `HttpServer::InitServer`)."""

from __future__ import annotations

from mindfed.address import Address, AddressError, Hosts
from mindfed.api.errors import JobConfigError, JobTypeError, JobValueError

INVALID_HTTP_ADDRESS = "Failed to start http server, invalid server address: {}"


def check_str(arg_name: str, value: object) -> str:
    """Returns `value` if it is a non-empty str.

    Raises:
        JobTypeError: not a str ("Parameter 'x' should be str, but actually <class 'int'>").
        JobValueError: the empty str.
    """
    if not isinstance(value, str):
        raise JobTypeError(f"Parameter '{arg_name}' should be str, but actually {type(value)}")
    if not value:
        raise JobValueError(f"Parameter '{arg_name}' should not be empty str")
    return value


def check_http_server_address(address: str) -> str:
    """A server's `http_server_address` must be a literal IPv4 `ip:port` (MindSpore uses `inet_addr`).

    Port 0 is accepted and asks the OS for a free port (the bound one is logged and in `/state`).

    Raises:
        JobConfigError: anything else, with the address in the message.
    """
    try:
        Address.parse(address, hosts=Hosts.IPV4)
    except AddressError:
        raise JobConfigError(INVALID_HTTP_ADDRESS.format(address)) from None
    return address
