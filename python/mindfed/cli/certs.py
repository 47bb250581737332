"""`mindfed certs DIR`: development TLS material in one command, to try enable_ssl and pki_verify locally.

Writes a CA (ca.crt), server.p12 and client.p12 (SAN 127.0.0.1/localhost, serverAuth + clientAuth: the node transport
uses both for mutual TLS), their passwords in passwords.env (mode 0600, MINDFED_SSL_*_PASSWORD: `set -a; . DIR/
passwords.env` before `mindfed server`), a device PKI for client_verify.pki_verify (two roots, an equipment CA, an
empty equipment CRL, one device's chain and key) and tls.yaml, the YAML keys that use all of it. Never production.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from mindfed.pki.dev_chain import write_device_pki
from mindfed.tls.dev_certs import write_dev_certs
from mindfed.tls.passwords import CLIENT_PASSWORD_ENV, SERVER_PASSWORD_ENV

FILES = ("ca.crt", "server.p12", "client.p12", "passwords.env", "tls.yaml", "pki")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="where to write the files (made if missing)")
    parser.add_argument("--force", action="store_true", help="overwrite files a previous run wrote")


def _nested(dotted: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = value
    return out


def run(args: argparse.Namespace) -> int:
    out = Path(args.directory)
    existing = [name for name in FILES if (out / name).exists()]
    if existing and not args.force:
        print(f"error: {out} already holds {', '.join(existing)} (use --force to replace them)")
        return 2
    certs = write_dev_certs(out)
    pki = write_device_pki(out / "pki")
    env = out / "passwords.env"
    env.touch(mode=0o600)
    env.chmod(0o600)
    env.write_text(f"{SERVER_PASSWORD_ENV}={certs.server_password}\n{CLIENT_PASSWORD_ENV}={certs.client_password}\n")
    (out / "tls.yaml").write_text(yaml.safe_dump(_nested({**certs.yaml_overrides(), **pki.yaml_overrides()}),
                                                 sort_keys=False))
    print(f"wrote {certs.ca_cert_path}, {certs.server_cert_path}, {certs.client_cert_path}")
    print(f"      {env} (the p12 passwords, mode 0600: `set -a; . {env}; set +a` before starting servers)")
    print(f"      {out / 'tls.yaml'} (merge its keys into the job's YAML: enable_ssl, ssl.*, client_verify.*)")
    print(f"      {out / 'pki'} (device PKI: roots, equipment CA, CRL; one device's chain and key in "
          f"{pki.device_dir})")
    return 0
