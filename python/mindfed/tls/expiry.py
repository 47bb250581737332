"""The certificate expiry warning (spec §10.1): server and CA certificates, at start and then daily.

MindSpore checks every 168 h; we check daily (a week's delay on a 7-day threshold could let a certificate expire
unwarned). A warning when fewer than `ssl.cert_expire_warning_time_in_day` days remain.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509

from mindfed.tls.identity import subject_name, utc

logger = logging.getLogger(__name__)
CHECK_EVERY_S = 24 * 3600.0


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> float:
    """Days until `cert` expires (negative once expired)."""
    moment = now or dt.datetime.now(dt.UTC)
    return (cert.not_valid_after_utc - moment).total_seconds() / 86400.0


def expiry_warnings(certs: Iterable[tuple[str, x509.Certificate]], warn_days: int,
                    now: dt.datetime | None = None) -> list[str]:
    """One message per certificate (labelled "what path") that expires within `warn_days` days."""
    found = []
    for where, cert in certs:
        left = days_left(cert, now)
        if left < warn_days:
            found.append(f"{where}: certificate {subject_name(cert)} expires in {left:.1f} days (not after "
                         f"{utc(cert.not_valid_after_utc)}), fewer than "
                         f"ssl.cert_expire_warning_time_in_day = {warn_days}; replace it (new connections pick a "
                         "replaced file up without a restart)")
    return found


def load_ca_certs(path: str | Path) -> list[x509.Certificate]:
    """The PEM certificates in `path`; [] when it cannot be read (the node transport reports that itself)."""
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        logger.warning("ssl.ca_cert_path %s: cannot read it for the expiry check: %s", path, exc)
        return []


def warn_expiring(certs: Iterable[tuple[str, x509.Certificate]], warn_days: int,
                  now: dt.datetime | None = None) -> list[str]:
    """Logs `expiry_warnings` as warnings and returns them."""
    messages = expiry_warnings(certs, warn_days, now)
    for message in messages:
        logger.warning("%s", message)
    return messages
