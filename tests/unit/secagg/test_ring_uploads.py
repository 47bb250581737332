"""Secure compressed uploads (secagg/ring.py): the ring kernel against a Python reference, and the aggregate of
masked DIFF_SPARSE_QUANT uploads with dropouts against plain quantised FedAvg computed here."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from mindfed import _core
from mindfed.cache.secagg import UnmaskInputs
from mindfed.secagg import ring
from mindfed.secagg.wire import DeviceKeys, RevealedShare, java_less
from mindfed.server.unmask import remove_ring_masks

RNG = np.random.default_rng(7)


def _words_ref(key: bytes, iv: bytes, n: int) -> np.ndarray:
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return np.frombuffer(enc.update(bytes(4 * n)) + enc.finalize(), "<u4").astype(np.uint32)


def _pair_key_ref(private: bytes, peer_public: bytes, salt: bytes) -> bytes:
    shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(peer_public))
    return PBKDF2HMAC(hashes.SHA256(), 32, salt, 10_000).derive(shared)


def test_ring_kernel_matches_a_python_reference() -> None:
    n = 3 * 4096 + 17  # several chunks and a tail, split over threads
    seeds = [(bytes(range(32)), bytes(16), 1.0), (bytes(range(1, 33)), bytes([9] * 16), -1.0)]
    a_sk, _ = _core.crypto.x25519_keypair()
    _, b_pk = _core.crypto.x25519_keypair()
    pairs = [(a_sk, b_pk, b"salty-salt", bytes([3] * 16), -1.0)]
    start = RNG.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    expected = start.astype(np.uint64)
    expected -= _words_ref(_pair_key_ref(a_sk, b_pk, b"salty-salt"), bytes([3] * 16), n)
    expected += _words_ref(seeds[0][0], seeds[0][1], n)
    expected -= _words_ref(seeds[1][0], seeds[1][1], n)
    expected = (expected & 0xFFFFFFFF).astype(np.uint32)
    for threads in (1, 2, 5):
        got = start.copy()
        _core.crypto.add_ring_masks(got, seeds, pairs, threads)
        np.testing.assert_array_equal(got, expected)


def test_ring_kernel_refuses_bad_arguments() -> None:
    seed = [(bytes(32), bytes(16), 1.0)]
    with pytest.raises(ValueError, match="uint32"):
        _core.crypto.add_ring_masks(np.zeros(4, np.float32), seed, [])
    a = np.zeros(4, np.uint32)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.crypto.add_ring_masks(a, seed, [])
    with pytest.raises(ValueError, match="1 or -1"):
        _core.crypto.add_ring_masks(np.zeros(4, np.uint32), [(bytes(32), bytes(16), 0.5)], [])


def test_limbs_sum_exactly_in_float32() -> None:
    k, n = 1000, 300
    words = RNG.integers(0, 2**32, (n, k), dtype=np.uint64).astype(np.uint32)
    limbs = np.zeros(ring.LIMBS * k, np.float32)
    for w in words:
        ring.add_limbs(limbs, w)
    np.testing.assert_array_equal(ring.ring_sum(limbs), (words.astype(np.uint64).sum(0) & 0xFFFFFFFF).astype(np.uint32))


def test_capacity_bound() -> None:
    # Σn·254 < 2^32: 258 devices of the largest data size (65535) fit, 259 do not
    assert ring.ring_capacity_ok(258 * 65535)
    assert not ring.ring_capacity_ok(259 * 65535)
    assert ring.MAX_LIMB_SUMMANDS >= 65793 - 1
    # at the bound the integer sum is exact: all-254 codes of the largest devices
    words = np.full(8, ring.CODE_MAX * 65535, np.uint32)
    total = np.zeros(8, np.uint64)
    for _ in range(258):
        total += words
    assert int(total.max()) < 2**32


def test_a_zero_difference_decodes_to_the_latest_model_exactly() -> None:
    # the grid has an odd number of levels: d = 0 is a code, so an untrained tensor does not drift
    layout = ring.RingLayout.of({"w": 500, "b": 20}, ["b", "w"], 0.4, 3, 0.05)
    latest = {"w": RNG.normal(0, 1, 500).astype(np.float32), "b": RNG.normal(0, 1, 20).astype(np.float32)}
    total = np.zeros(layout.k, np.uint32)
    for n in (3, 200, 65535):
        words = ring.quantize_codes(layout, {"w": np.zeros(500), "b": np.zeros(20)}, n)
        assert set((words // n).tolist()) == {127}
        total += words
    decoded = ring.decode(layout, total, 3 + 200 + 65535, latest)
    for name, values in latest.items():
        np.testing.assert_allclose(decoded[name] / (3 + 200 + 65535), values, rtol=0, atol=1e-6)


def _device(fl_id: str) -> dict:
    c_sk, c_pk = _core.crypto.x25519_keypair()
    s_sk, s_pk = _core.crypto.x25519_keypair()
    keys = DeviceKeys(c_pk, s_pk, _core.crypto.random_bytes(16), _core.crypto.random_bytes(16),
                      _core.crypto.random_bytes(32))
    return {"id": fl_id, "s_sk": s_sk, "b_u": _core.crypto.random_bytes(32), "keys": keys}


def _streams(me: dict, peers: list[dict]) -> tuple[list, list]:
    pairs = []
    for peer in peers:
        low = peer["keys"] if java_less(peer["id"], me["id"]) else me["keys"]
        pairs.append((me["s_sk"], peer["keys"].s_pk, low.pw_salt, low.pw_iv,
                      1.0 if java_less(peer["id"], me["id"]) else -1.0))
    return [(me["b_u"], me["keys"].ind_iv, 1.0)], pairs


@pytest.fixture(scope="module")
def prime() -> bytes:
    return _core.crypto.generate_safe_prime(264)


def test_masked_aggregate_equals_quantised_fedavg_with_dropouts(prime: bytes) -> None:
    n_dev, t = 20, 12
    sizes = {"w": 3000, "b": 37}
    layout = ring.RingLayout.of(sizes, ["w", "b"], 0.4, 5, 0.05)
    latest = {name: RNG.normal(0, 1, size).astype(np.float32) for name, size in sizes.items()}
    devices = [_device(f"dev-{i:02d}") for i in range(n_dev)]
    dropped = {d["id"] for d in RNG.choice(devices, 2, replace=False)}  # 10 % drop after shareSecrets
    data_sizes = {d["id"]: int(RNG.integers(1, 65536)) for d in devices}
    shares = {d["id"]: (_core.crypto.shamir_split(d["s_sk"], t, n_dev, prime),
                        _core.crypto.shamir_split(d["b_u"], t, n_dev, prime)) for d in devices}

    limbs = np.zeros(ring.LIMBS * layout.k, np.float32)
    plain_codes = np.zeros(layout.k, np.uint64)
    reference = {name: np.zeros(size, np.float64) for name, size in sizes.items()}
    uploaders = [d for d in devices if d["id"] not in dropped]
    for dev in uploaders:
        n = data_sizes[dev["id"]]
        diffs = {name: RNG.normal(0, 0.02, size).astype(np.float32) for name, size in sizes.items()}
        words = ring.quantize_codes(layout, diffs, n)
        plain_codes += words
        masked = ring.mask_words(words, *_streams(dev, [p for p in devices if p is not dev]))
        body = ring.split_words(layout, masked)  # what goes on the wire
        got = ring.verify_words(layout, layout.names, body)
        assert not isinstance(got, str)
        ring.add_limbs(limbs, got)
        # the reference: plain quantised FedAvg numerator Σ n·(w_latest + d̂), d̂ on the kept coordinates only
        flat = np.concatenate([diffs[name] for name in layout.names]).astype(np.float64)
        dq = np.zeros_like(flat)
        kept = layout.kept()
        c = np.rint((np.clip(flat[kept], layout.lo, layout.hi) - layout.lo) / layout.scale)
        dq[kept] = layout.lo + layout.scale * c
        offset = 0
        for name in layout.names:
            reference[name] += n * (latest[name].astype(np.float64) + dq[offset:offset + sizes[name]])
            offset += sizes[name]

    # reconstructors: every uploader reveals b-shares of uploaders and s-shares of the dropped
    order = [d["id"] for d in devices]
    revealed = {u["id"]: [RevealedShare(src, order.index(u["id"]) + 1,
                                        shares[src][1 if src not in dropped else 0][order.index(u["id"])])
                          for src in order if src != u["id"]] for u in uploaders}
    inputs = UnmaskInputs({d["id"]: d["keys"] for d in devices}, set(order), {u["id"] for u in uploaders}, revealed)
    # the dropped devices' s_sk as the server sees them: their keys are in the inputs; the streams use s_sk shares
    total = ring.ring_sum(limbs)
    remove_ring_masks(total, inputs, t, prime)
    sigma_n = sum(data_sizes[u["id"]] for u in uploaders)
    assert ring.ring_capacity_ok(sigma_n)
    decoded = ring.decode(layout, total, sigma_n, latest)
    err = max(float(np.max(np.abs(decoded[name] / sigma_n - reference[name] / sigma_n))) for name in sizes)
    print(f"max abs error of the averaged model vs quantised FedAvg: {err:.3g}")
    assert err < 1e-5  # float32 rounding of the decode; the integer sums themselves are exact
    np.testing.assert_array_equal(total, plain_codes)  # the unmasked ring sum is exactly Σ n·c


def test_malformed_uploads_are_refused_with_reasons() -> None:
    layout = ring.RingLayout.of({"w": 100, "b": 10}, ["w", "b"], 0.5, 1, 0.1)
    good = ring.split_words(layout, np.zeros(layout.k, np.uint32))
    assert not isinstance(ring.verify_words(layout, ["w", "b"], good), str)
    assert "model order" in str(ring.verify_words(layout, ["b", "w"], good))
    assert "follow name_vec" in str(ring.verify_words(layout, ["w", "b"], good[::-1]))
    off_grid = [(good[0][0], good[0][1], -0.2, 0.1), good[1]]
    assert "announced grid" in str(ring.verify_words(layout, ["w", "b"], off_grid))
    short = [(good[0][0], good[0][1][:-4], good[0][2], good[0][3]), good[1]]
    assert "4 per kept value" in str(ring.verify_words(layout, ["w", "b"], short))
    with pytest.raises(ValueError, match="2\\^32 ring"):
        ring.decode(layout, np.zeros(layout.k, np.uint32), 259 * 65535, {"w": np.zeros(100), "b": np.zeros(10)})
