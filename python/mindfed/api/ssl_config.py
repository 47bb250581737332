"""MindSpore Federated's `SSLConfig`: the p12 passwords the server and scheduler jobs hand to their HTTPS servers
(and node transport) when the YAML says `enable_ssl: true`; mindfed's optional path arguments override `ssl.*`."""

from __future__ import annotations

from mindfed.api.errors import JobTypeError
from mindfed.api.params import check_str

DEFAULT_CIPHER_LIST = ("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
                       "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305:"
                       "ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-CHACHA20-POLY1305")


class SSLConfig:
    """Passwords and paths of the TLS certificates, with MindSpore's signature and checks.

    Args:
        server_password: password of `ssl.server_cert_path` (a PKCS#12 file).
        client_password: password of `ssl.client_cert_path`.
        server_cert_path, client_cert_path, ca_cert_path, crl_path: optional overrides of the YAML's `ssl.*`.
        cipher_list: OpenSSL cipher list.
        cert_expire_warning_time_in_day: warn this many days before a certificate expires.

    Raises:
        JobTypeError: a password or path is not a str, or the day count is not an int.
        JobValueError: a password is the empty str.
    """

    def __init__(self, server_password: str, client_password: str, server_cert_path: str | None = None,
                 client_cert_path: str | None = None, ca_cert_path: str | None = None, crl_path: str | None = None,
                 cipher_list: str = DEFAULT_CIPHER_LIST, cert_expire_warning_time_in_day: int = 90) -> None:
        self.server_password = check_str("server_password", server_password)
        self.client_password = check_str("client_password", client_password)
        self.server_cert_path = server_cert_path and check_str("server_cert_path", server_cert_path)
        self.client_cert_path = client_cert_path and check_str("client_cert_path", client_cert_path)
        self.ca_cert_path = ca_cert_path and check_str("ca_cert_path", ca_cert_path)
        self.crl_path = crl_path and check_str("crl_path", crl_path) or ""
        self.cipher_list = check_str("cipher_list", cipher_list)
        if isinstance(cert_expire_warning_time_in_day, bool) or not isinstance(cert_expire_warning_time_in_day, int):
            raise JobTypeError("Parameter 'cert_expire_warning_time_in_day' should be int, but actually "
                               f"{type(cert_expire_warning_time_in_day)}")
        self.cert_expire_warning_time_in_day = cert_expire_warning_time_in_day

    def __repr__(self) -> str:
        return "SSLConfig(server_password=***, client_password=***)"  # never print the passwords


def check_ssl_config(ssl_config: object) -> SSLConfig | None:
    """MindSpore's check of the `ssl_config` parameter of both jobs."""
    if ssl_config is not None and not isinstance(ssl_config, SSLConfig):
        raise JobTypeError(f"Parameter 'ssl_config' should be None or instance of SSLConfig, but got "
                           f"{type(ssl_config)}")
    return ssl_config


def ssl_path_overrides(ssl_config: SSLConfig | None) -> dict[str, object]:
    """The dotted YAML keys `ssl_config` overrides: the paths it gives, and cipher_list / the warning days when they
    differ from the defaults (MindSpore's SSLConfig has only the passwords: its YAML is then used unchanged)."""
    if ssl_config is None:
        return {}
    overrides: dict[str, object] = {f"ssl.{name}": value for name in ("server_cert_path", "client_cert_path",
                                                                      "ca_cert_path", "crl_path")
                                    if (value := getattr(ssl_config, name))}
    if ssl_config.cipher_list != DEFAULT_CIPHER_LIST:
        overrides["ssl.cipher_list"] = ssl_config.cipher_list
    if ssl_config.cert_expire_warning_time_in_day != 90:  # noqa: PLR2004 - the YAML's default
        overrides["ssl.cert_expire_warning_time_in_day"] = ssl_config.cert_expire_warning_time_in_day
    return overrides
