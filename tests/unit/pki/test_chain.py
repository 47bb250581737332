"""The device chain check of pki_verify (spec §10.2) against certificates made here: every link refused on its own."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from tests.device_certs import DevicePki, Issuer, issue, pem, pool_key

from mindfed.errors import ConfigError
from mindfed.pki import (
    ChainError,
    TrustAnchors,
    fl_id_of,
    round_data,
    start_fl_job_data,
    timestamp_in_window,
    verify_chain,
    verify_pss,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevicePki:
    return DevicePki(tmp_path_factory.mktemp("pki"))


def anchors(pki: DevicePki) -> TrustAnchors:
    return TrustAnchors.load(pki.root_first_ca_path, pki.root_second_ca_path, pki.crl_path)


def check(pki: DevicePki, device: object) -> None:
    verify_chain(anchors(pki), device.key_attestation, device.equip_cert, device.equip_ca_cert)  # type: ignore[attr-defined]


def test_a_valid_chain_passes_and_its_signatures_verify(pki: DevicePki) -> None:
    device = pki.device()
    check(pki, device)
    data = start_fl_job_data(device.fl_id, "1700000000000")
    assert verify_pss(device.key_attestation, data, device.sign(data))
    assert device.fl_id == fl_id_of(device.equip_cert)
    assert len(device.fl_id) == 64
    assert device.fl_id.islower()


def test_a_chain_under_either_root_passes(pki: DevicePki) -> None:
    key = pool_key()
    ca = Issuer(issue("Other Equipment CA", key, pki.roots[0], ca=True), key)
    check(pki, pki.device(ca))


def test_an_unknown_root_is_refused(pki: DevicePki) -> None:
    with pytest.raises(ChainError, match="trusted root"):
        check(pki, pki.device(pki.rogue_ca))


def test_an_equipment_ca_that_may_not_sign_certificates_is_refused(pki: DevicePki) -> None:
    key = pool_key()
    ca = Issuer(issue("Weak Equipment CA", key, pki.roots[1], ca=True, cert_sign=False), key)
    with pytest.raises(ChainError, match="keyCertSign"):
        check(pki, pki.device(ca))


def test_missing_key_ids_are_refused(pki: DevicePki) -> None:
    key = pool_key()
    ca = Issuer(issue("No-id Equipment CA", key, pki.roots[1], ca=True, key_ids=False), key)
    with pytest.raises(ChainError):
        check(pki, pki.device(ca))


def test_not_before_may_be_ten_minutes_ahead_not_more(pki: DevicePki) -> None:
    now = dt.datetime.now(dt.UTC)
    check(pki, pki.device(not_before=now + dt.timedelta(seconds=300)))
    with pytest.raises(ChainError, match="not valid before"):
        check(pki, pki.device(not_before=now + dt.timedelta(seconds=900)))
    with pytest.raises(ChainError, match="expired"):
        check(pki, pki.device(not_before=now - dt.timedelta(days=3), not_after=now - dt.timedelta(days=1)))


def test_a_mixed_chain_is_refused(pki: DevicePki) -> None:
    a, b = pki.device(), pki.device()
    with pytest.raises(ChainError, match="key_attestation is not issued"):
        verify_chain(anchors(pki), a.key_attestation, b.equip_cert, b.equip_ca_cert)


def test_a_revoked_equipment_certificate_is_refused_and_the_crl_reloads(tmp_path: Path) -> None:
    pki = DevicePki(tmp_path)
    good, revoked = pki.device(), pki.device()
    trust = anchors(pki)
    verify_chain(trust, revoked.key_attestation, revoked.equip_cert, revoked.equip_ca_cert)
    time.sleep(0.01)
    pki.revoke(revoked)  # the same TrustAnchors sees the new file
    with pytest.raises(ChainError, match="revoked"):
        verify_chain(trust, revoked.key_attestation, revoked.equip_cert, revoked.equip_ca_cert)
    verify_chain(trust, good.key_attestation, good.equip_cert, good.equip_ca_cert)


def test_a_crl_with_a_forged_signature_fails_closed(tmp_path: Path) -> None:
    pki = DevicePki(tmp_path)
    device = pki.device()
    pki.revoke(signer=pki.rogue_ca)  # names the equipment CA, signed by someone else
    with pytest.raises(ChainError, match="revoked"):
        check(pki, device)


def test_malformed_pem_is_a_chain_error_never_a_crash(pki: DevicePki) -> None:
    device = pki.device()
    for bad in ("", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                device.equip_cert[:200]):
        with pytest.raises(ChainError):
            verify_chain(anchors(pki), bad, device.equip_cert, device.equip_ca_cert)
        with pytest.raises(ChainError):
            verify_chain(anchors(pki), device.key_attestation, bad, device.equip_ca_cert)
        assert not verify_pss(bad, b"x", b"y" * 256)


def test_signatures_refuse_tampering_and_garbage(pki: DevicePki) -> None:
    device = pki.device()
    data = round_data("1700000000000", 3)
    sig = bytearray(device.sign(data))
    assert verify_pss(device.key_attestation, data, bytes(sig))
    assert not verify_pss(device.key_attestation, round_data("1700000000000", 4), bytes(sig))
    sig[10] ^= 1
    assert not verify_pss(device.key_attestation, data, bytes(sig))
    for junk in (b"", b"\x00", b"\xff" * 256, b"\xff" * 5000):
        assert not verify_pss(device.key_attestation, data, junk)


def test_the_timestamp_window() -> None:
    now = 1_700_000_000_000
    assert timestamp_in_window(str(now - 600000), now, 600000)
    assert timestamp_in_window(str(now + 600000), now, 600000)
    assert not timestamp_in_window(str(now - 600001), now, 600000)
    assert not timestamp_in_window(str(now + 600001), now, 600000)
    for junk in ("2020/11/16/19/18", "", "-5", "1e9", "１２３", "9" * 30):
        assert not timestamp_in_window(junk, now, 600000)


def test_a_missing_root_fails_clearly(pki: DevicePki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="root_second_ca_path.*cannot read"):
        TrustAnchors.load(pki.root_first_ca_path, str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigError, match="root_first_ca_path: required"):
        TrustAnchors.load("", pki.root_second_ca_path)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        TrustAnchors.load(str(bad), pki.root_second_ca_path)
    with pytest.raises(ConfigError, match="holds no PEM CRL"):
        TrustAnchors.load(pki.root_first_ca_path, pki.root_second_ca_path, str(bad))
    assert TrustAnchors.load(pki.root_first_ca_path, pki.root_second_ca_path, str(tmp_path / "no-crl.pem")).crls == []


def test_the_device_identity_never_shows_its_key(pki: DevicePki) -> None:
    assert "private_key" not in repr(pki.device())
    assert pem(pki.roots[0].cert).startswith("-----BEGIN CERTIFICATE-----")
