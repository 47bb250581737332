"""Type stubs for mindfed._core, the C++ extension. Import the Python faces, not this module.

At run time `crypto`, `agg` and `bench` are submodules; they are written here as classes of
static methods because a single-file stub cannot declare submodules.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_U32 = npt.NDArray[np.uint32]

has_cuda: bool
"""True when built with MINDFED_WITH_CUDA=ON (the optional kernels in cuda/)."""

def _raise_for_test(kind: str) -> None:
    """Raise the C++ error named by kind ('protocol', 'crypto', 'net', 'base'); tests only.

    Raises:
        mindfed.errors.ProtocolError, CryptoError, NetworkError, MindFedError: per kind.
        ValueError: unknown kind.
    """

class crypto:  # noqa: N801  (a submodule at run time)
    """PW_ENCRYPT's primitives, byte-compatible with MindSpore Federated (spec §7.1).

    Keys and IVs are bytes of exact lengths (X25519 and AES keys 32, IVs 16): a wrong length,
    a non-bytes key or a wrong-typed int raises ValueError, whose message never contains the
    arguments. libcrypto failures raise mindfed.errors.CryptoError. Every call that can take
    more than microseconds releases the GIL.
    """

    @staticmethod
    def random_bytes(n: int) -> bytes:
        """n bytes from OpenSSL's CSPRNG (RAND_bytes). Raises CryptoError if it fails."""
    @staticmethod
    def x25519_keypair() -> tuple[bytes, bytes]:
        """A fresh X25519 key pair: (private 32 B, public 32 B), raw as MindSpore sends them."""
    @staticmethod
    def x25519_public(private: bytes) -> bytes:
        """The 32-byte public key of a raw 32-byte private key (clamped inside)."""
    @staticmethod
    def x25519(private: bytes, peer_public: bytes) -> bytes:
        """The raw 32-byte X25519 shared secret.

        Raises:
            ValueError: a key is not 32 bytes.
            mindfed.errors.CryptoError: the result is all zero (low-order peer key).
        """
    @staticmethod
    def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int = 10000, length: int = 32) -> bytes:
        """PBKDF2-HMAC-SHA256 (RFC 8018); ValueError for iterations < 1 or length outside [1, 2^30]."""
    @staticmethod
    def aes256_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
        """data XOR the AES-256-CTR keystream; iv is the initial 128-bit big-endian counter."""
    @staticmethod
    def aes256_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
        """AES-256-CBC with PKCS#7 padding; the ciphertext only (MindSpore prepends the IV itself)."""
    @staticmethod
    def aes256_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        """Inverse of aes256_cbc_encrypt; CryptoError for a bad length or bad padding."""
    @staticmethod
    def mask_values(key: bytes, iv: bytes, n: int) -> _F32:
        """MindSpore's mask PRG: n float32 values (float)v / (float)INT32_MAX, v the little-endian
        int32 words of the AES-256-CTR keystream of (key, iv); values in [-1, 1)."""
    @staticmethod
    def add_masks(
        arrays: Sequence[_F32],
        seeds: Sequence[tuple[bytes, bytes, float]],
        pairs: Sequence[tuple[bytes, bytes, bytes, bytes, float]],
        threads: int = 0,
    ) -> None:
        """Add PW_ENCRYPT masks in place, each array from PRG offset 0.

        For every array a and i < a.size:
        a[i] += sum over pairs (private, peer_public, salt, iv, coeff) of
        coeff * PRG(PBKDF2_SHA256(X25519(private, peer_public), salt, 10000, 32), iv)[i],
        then over seeds (key, iv, coeff) of coeff * PRG(key, iv)[i]; float32 arithmetic, one
        term at a time in that order (from a zero array: the Java client's mask). Bit-identical
        for every thread count. threads=0 uses all cores. Coefficients are rounded to float32.

        Args:
            arrays: writeable C-contiguous float32 arrays (any shape), not overlapping each other.
            seeds: (32-byte AES key, 16-byte IV, coeff).
            pairs: (32-byte X25519 private, 32-byte peer public, salt of any length, 16-byte IV, coeff).
            threads: 0 to 1024.

        Raises:
            ValueError: any argument is malformed (checked before anything is written).
            mindfed.errors.CryptoError: a low-order peer key or a libcrypto failure (the arrays
                are then partly masked).
        """
    @staticmethod
    def add_ring_masks(
        array: _U32,
        seeds: Sequence[tuple[bytes, bytes, float]],
        pairs: Sequence[tuple[bytes, bytes, bytes, bytes, float]],
        threads: int = 0,
    ) -> None:
        """Add the same masks as add_masks in the ring Z/2^32, in place, from PRG offset 0.

        a[i] += sum of coeff * W[i] mod 2^32 over pairs and seeds, W the keystream of the pair's
        or seed's key read as little-endian uint32 words (same key derivation as add_masks).
        Exact; the result does not depend on order or thread count. coeff must be 1 or -1.

        Raises:
            ValueError: a malformed argument (not writeable C-contiguous uint32, a coeff not ±1).
            mindfed.errors.CryptoError: a low-order peer key or a libcrypto failure.
        """
    @staticmethod
    def generate_safe_prime(bits: int = 264) -> bytes:
        """A safe prime of exactly `bits` bits (16..4096), big-endian in ceil(bits/8) bytes."""
    @staticmethod
    def shamir_split(secret: bytes, t: int, n: int, prime: bytes) -> list[bytes]:
        """Shares f(1..n) of the big-endian secret with threshold t, minimal big-endian (zero: b"").

        Raises:
            ValueError: not 1 <= t <= n, n not below the prime, or the secret not below the prime.
        """
    @staticmethod
    def shamir_combine(shares: Sequence[tuple[int, bytes]], t: int, prime: bytes, length: int = 32) -> bytes:
        """Lagrange interpolation at 0 over the first t (index, share) pairs, left-padded to length bytes.

        Raises:
            mindfed.errors.CryptoError: fewer than t shares; an index zero, negative, repeated or
                not below the prime; a share not below the prime; a result wider than length.
        """

class agg:  # noqa: N801
    """In-place weighted sums. Arrays: C-contiguous native float32, any shape, equal sizes.

    Sources may be read-only and at any byte alignment. A wrong dtype, strided view or list
    raises TypeError (never a silent copy); a size mismatch or read-only destination raises
    ValueError. Every call releases the GIL for the arithmetic.
    """

    @staticmethod
    def accumulate(acc: _F32, update: _F32, weight: float) -> None:
        """acc += weight * update, in place."""

    @staticmethod
    def accumulate_group(acc: _F32, updates: Sequence[_F32], weights: Sequence[float]) -> None:
        """acc += sum_j weights[j] * updates[j], in one cache-blocked pass over acc."""

    @staticmethod
    def scale_into(src: _F32, factor: float, out: _F32) -> None:
        """out = factor * src (out may be src)."""

    @staticmethod
    def all_finite(src: _F32) -> bool:
        """True when no element is NaN or +-inf (one pass, no temporary; an empty array is True)."""

class bench:  # noqa: N801
    @staticmethod
    def triad(a: _F32, b: _F32, c: _F32, scalar: float, repeats: int) -> float:
        """STREAM triad a = b + scalar * c run `repeats` times; best time in seconds.

        STREAM counts 3 * a.nbytes bytes per run. Releases the GIL.
        """

class net:  # noqa: N801
    """Node-to-node TCP transport: length-prefixed frames, one C++ I/O thread per Node.

    Frame header (24 bytes, little-endian): magic u32 "MFD1", type u16, flags u16,
    request_id u64, payload_len u64. Use mindfed.net.TcpEndpoint, not these directly.
    """

    HEADER_BYTES: int
    FLAG_RESPONSE: int
    FLAG_ERROR: int
    CLOSED: int
    """`type` of a take_ready() entry that reports a closed connection (payload is the reason)."""

    class TlsOptions:
        """Mutual-TLS material of a Node (read when the Node is made; repr hides the passwords).

        server_cert_path / client_cert_path: PKCS#12 presented when accepting / connecting; ca_cert_path: PEM CA
        that peers must chain to; crl_path: PEM CRL of that CA ("" = no revocation check); cipher_list: TLS 1.2
        suites ("" = OpenSSL's default; TLS 1.3 keeps its AEAD defaults).
        """

        def __init__(
            self,
            *,
            server_cert_path: str,
            server_password: str,
            client_cert_path: str,
            client_password: str,
            ca_cert_path: str,
            crl_path: str = "",
            cipher_list: str = "",
        ) -> None: ...
        @property
        def server_cert_path(self) -> str: ...
        @property
        def client_cert_path(self) -> str: ...
        @property
        def ca_cert_path(self) -> str: ...
        @property
        def crl_path(self) -> str: ...
        @property
        def cipher_list(self) -> str: ...

    class Node:
        """A TCP node with its own epoll I/O thread; listens and connects to peers on demand.

        Closed (thread joined) by close(), by dropping the last reference, or at interpreter exit.
        """

        def __init__(
            self,
            host: str,
            port: int = 0,
            max_connections: int = 10000,
            max_frame_bytes: int = 1 << 34,
            buffer_cache_bytes: int = 1 << 31,
            tls: net.TlsOptions | None = None,
        ) -> None:
            """Binds host:port (an IPv4 or IPv6 literal; port 0: a free one) and starts the I/O thread.

            With tls every connection is mutual TLS (TLS >= 1.2, peer certificate verified against the CA and
            CRL); a failed handshake closes the connection with a CLOSED reason "TLS handshake with ... failed: ...".

            Payload arrays that Python frees (>= 1 MiB) go back to a cache of at most
            buffer_cache_bytes and are reused by the next inbound frame of the same size.

            Raises:
                mindfed.errors.NetworkError: cannot bind or listen; the TLS material cannot be loaded (names the file
                    and the cause: "PKCS12_parse failed." for a wrong password, never the password).
                ValueError: host is not an IPv4 or IPv6 literal, port out of range, max_connections < 1.
            """

        def port(self) -> int:
            """The port actually listened on."""

        def wake_fd(self) -> int:
            """An eventfd, readable while take_ready() has something to return."""

        def take_ready(self) -> list[tuple[int, str, int, int, int, npt.NDArray[np.uint8] | str]]:
            """All waiting events, non-blocking: (conn_id, peer "ip:port", type, request_id, flags, payload).

            payload is a writable uint8 array that owns the received bytes (no copy). An entry
            with type == CLOSED reports that conn_id closed; its payload is the reason (str).
            """

        def send(self, peer: str | int, type: int, request_id: int, flags: int, payload: object) -> int:
            """Queues one frame; returns the connection id. Non-blocking.

            Args:
                peer: "ip:port" (a connection is opened on first use, then reused) or a conn_id.
                type, flags: 0..65535.
                payload: any C-contiguous buffer (bytes, numpy array, memoryview). From 64 KiB up
                    it is written in place and must not change until the write is done.

            Raises:
                mindfed.errors.NetworkError: conn_id is closed, or the node is closed.
                ValueError: malformed address, type or flags out of range.
                ValueError or BufferError: payload is not C-contiguous (raised by its exporter).
            """

        def reload_tls(self, tls: net.TlsOptions) -> None:
            """Loads new TLS material (GIL released) and uses it for connections accepted or opened from now on.

            Established connections, handshakes under way and frames in flight keep the material they started with.

            Raises:
                mindfed.errors.NetworkError: the material cannot be loaded (the same texts as the constructor's), or
                    the node was made without tls; the current material then stays in use.
            """

        def close(self) -> None:
            """Stops and joins the I/O thread and closes every socket. Idempotent."""

        def _held_count(self) -> int:
            """Payloads borrowed by pending writes (tests)."""

    class FrameDecoder:
        """Incremental decoder of a frame byte stream (tests, tools)."""

        def __init__(self, max_frame_bytes: int) -> None: ...
        def feed(self, data: object) -> list[tuple[int, int, int, bytes]]:
            """Adds bytes; returns the frames now complete as (type, request_id, flags, payload).

            Raises:
                mindfed.errors.ProtocolError: bad magic, or payload_len > max_frame_bytes.
            """

        @property
        def mid_frame(self) -> bool:
            """True while part of a frame has arrived but not all of it."""

    @staticmethod
    def encode_frame(type: int, request_id: int, flags: int, payload: object) -> bytes:
        """Header + payload as bytes."""

class compression:  # noqa: N801
    """MindSpore DIFF_SPARSE_QUANT / QUANT kernels, bit-exact with the Java client (spec §8).

    Arrays: C-contiguous native float32 / int8 / int32, any shape (read flat), at any byte
    alignment. A wrong dtype or strided view raises TypeError; a size mismatch or read-only
    output raises ValueError. Use mindfed.compression, not these directly.
    """

    @staticmethod
    def kept_count(d: int, rate: float) -> int:
        """K = (int)((float)d * rate). ValueError unless 0 < rate <= 1 and 0 <= d < 2**31."""

    @staticmethod
    def sparse_indices(d: int, rate: float, seed: int) -> npt.NDArray[np.int32]:
        """Ascending positions kept by the seeded sparse mask (seed = iteration). Releases the GIL."""

    @staticmethod
    def quant_scale(min: float, max: float) -> float:
        """(max - min) / 255 + 1e-10 in float32."""

    @staticmethod
    def quantize_into(x: _F32, codes: npt.NDArray[np.int8]) -> tuple[float, float]:
        """codes = quantised x; returns (min, max). ValueError on NaN/Inf or a float32-overflowing range."""

    @staticmethod
    def dequantize_into(codes: npt.NDArray[np.int8], min: float, max: float, out: _F32) -> None:
        """out = (codes + 128) * scale + min."""

    @staticmethod
    def decode_accumulate(
        acc: _F32,
        codes: npt.NDArray[np.int8],
        min: float,
        max: float,
        kept: npt.NDArray[np.int32],
        offset: int,
        latest: _F32,
        data_size: int,
    ) -> None:
        """acc += decoded sparse tensor + data_size * latest, in place, without a dense copy.

        kept: this tensor's slice of sparse_indices (global positions); offset: the tensor's
        first global position.

        Raises:
            mindfed.errors.ProtocolError: len(codes) != len(kept), or min/max not finite with
                min <= max (checked only when kept is non-empty).
            ValueError: acc and latest differ in size, kept not ascending inside the tensor,
                data_size < 0.
        """
