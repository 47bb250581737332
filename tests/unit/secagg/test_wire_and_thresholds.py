"""PW_ENCRYPT's byte layouts (Java's share plaintext, our Redis records), the cipher-table codec, the round thresholds
of spec §4.1 and MindSpore's "cipher init fail." start-up check."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfed.config import load
from mindfed.errors import ConfigError, ProtocolError
from mindfed.protocol import tables
from mindfed.protocol.generated.ReturnExchangeKeys import ReturnExchangeKeys
from mindfed.secagg.thresholds import check_pw_thresholds, pw_thresholds
from mindfed.secagg.wire import (
    DeviceKeys,
    RevealedShare,
    SharePlaintext,
    java_less,
    minimal_be,
    pack_revealed,
    unpack_revealed,
)
from mindfed.server.capabilities import check_supported

LENET = Path(__file__).resolve().parents[3] / "yamls" / "lenet.yaml"


def pw(**overrides: object):  # type: ignore[no-untyped-def]
    return load(LENET, {"distributed_cache.address": "127.0.0.1:1", "encrypt.encrypt_train_type": "PW_ENCRYPT",
                        **overrides})


def test_share_plaintext_is_javas_layout() -> None:
    plain = SharePlaintext(s_index=3, b_index=300, s_share=b"\x01\x02", b_share=b"\x00\xff\x07")
    packed = plain.pack()
    # [len sShare, len bShare, len sIdx, len bIdx] ‖ sIdx ‖ bIdx ‖ sShare ‖ bShare, indices minimal big-endian
    assert packed == bytes([2, 3, 1, 2]) + b"\x03" + b"\x01\x2c" + b"\x01\x02" + b"\x00\xff\x07"
    assert SharePlaintext.unpack(packed) == plain
    with pytest.raises(ProtocolError):
        SharePlaintext.unpack(packed[:-1])
    assert minimal_be(0) == b""
    assert minimal_be(256) == b"\x01\x00"


def test_keys_have_fixed_lengths_and_revealed_shares_round_trip() -> None:
    keys = DeviceKeys(b"c" * 32, b"s" * 32, b"i" * 16, b"p" * 16, b"t" * 32)
    assert DeviceKeys.unpack(keys.pack()) == keys
    with pytest.raises(ProtocolError, match="must be 32, 32, 16, 16, 32 bytes"):
        DeviceKeys(b"c" * 31, b"s" * 32, b"i" * 16, b"p" * 16, b"t" * 32)
    shares = [RevealedShare("dev_é", 7, b"\x00" * 33), RevealedShare("x", 65535, b"")]
    assert unpack_revealed(pack_revealed(shares)) == shares
    with pytest.raises(ProtocolError):
        unpack_revealed(pack_revealed(shares)[:-3])


def test_java_order_is_utf16_code_units() -> None:
    assert java_less("a", "b")
    assert not java_less("b", "a")
    # U+FFFF sorts after a surrogate pair (U+1F600) in Java's UTF-16 order, before it by code point
    assert java_less("\U0001F600", "\uffff")
    assert "\uffff" < "\U0001F600"


def test_codec_matches_the_generated_reader_and_rejects_garbage() -> None:
    body = tables.encode("ReturnExchangeKeys", {"retcode": 200, "iteration": 4, "next_req_time": "9",
                                                "remote_publickeys": [{"fl_id": "a", "c_pk": b"\x01" * 32}]})
    view = ReturnExchangeKeys.GetRootAs(body, 0)
    assert (view.Retcode(), view.Iteration(), view.RemotePublickeysLength()) == (200, 4, 1)
    assert view.RemotePublickeys(0).FlId() == b"a"
    decoded = tables.decode("ReturnExchangeKeys", body)
    assert decoded["remote_publickeys"][0]["c_pk"] == b"\x01" * 32
    assert decoded["remote_publickeys"][0]["s_pk"] == b""
    with pytest.raises(ProtocolError, match="The schema of GetClientList is invalid."):
        tables.decode("GetClientList", b"\x04\x00\x00\x00garbage!")
    with pytest.raises(KeyError):
        tables.encode("GetClientList", {"no_such_field": 1})


def test_thresholds_follow_spec_4_1() -> None:
    th = pw_thresholds(pw(**{"round.start_fl_job_threshold": 20, "round.update_model_ratio": 0.7,
                             "encrypt.pw_encrypt.share_secrets_ratio": 0.9,
                             "encrypt.pw_encrypt.reconstruct_secrets_threshold": 5}))
    # E = max(ceil(20·0.9), 14) = 18, G = 17, S = 16, getSecrets 15, L = max(ceil(14·0.9), 6) = 13
    assert (th.exchange_keys, th.get_keys, th.share_secrets, th.get_secrets, th.get_client_list,
            th.reconstruct_secrets, th.t) == (18, 17, 16, 15, 13, 6, 5)


def test_cipher_init_fail_as_mindspore() -> None:
    cfg = pw(**{"round.start_fl_job_threshold": 1, "encrypt.pw_encrypt.reconstruct_secrets_threshold": 1})
    with pytest.raises(ConfigError, match="cipher init fail."):
        check_supported(cfg)
    check_supported(pw(**{"round.start_fl_job_threshold": 2}))  # the seed's PW section, T_s = 2: starts
    assert check_pw_thresholds(pw(**{"round.start_fl_job_threshold": 4, "round.update_model_ratio": 0.25,
                                     "encrypt.pw_encrypt.reconstruct_secrets_threshold": 2}))  # warns
