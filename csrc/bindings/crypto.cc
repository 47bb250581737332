// _core.crypto: PW_ENCRYPT's primitives (X25519, PBKDF2, AES-CTR/CBC, mask PRG, Shamir) and
// the multi-threaded add_masks. Every argument is checked here, with the GIL held (wrong
// lengths, dtypes, read-only arrays: ValueError); the work then runs without the GIL.
// Messages name lengths and positions, never key bytes. Every parameter is a py::object
// checked here because pybind11's own TypeError for a mismatched call would print all the
// arguments, keys included.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindings/bind.h"
#include "crypto/aes.h"
#include "crypto/kdf.h"
#include "crypto/masks.h"
#include "crypto/prg.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "crypto/x25519.h"
#include "common/errors.h"

#include <openssl/crypto.h>

namespace mindfed::bindings {
namespace {

using crypto::Key32;

py::bytes ToBytes(const uint8_t* p, size_t n) {
  return py::bytes(reinterpret_cast<const char*>(p), n);
}
py::bytes ToBytes(const std::vector<uint8_t>& v) { return ToBytes(v.data(), v.size()); }

// The bytes of a bytes object, borrowed: valid while the object is (the caller's arguments
// outlive the call, and bytes are immutable, so no copy is needed without the GIL).
std::string_view View(const py::handle& obj, const std::string& what) {
  if (!PyBytes_Check(obj.ptr())) {
    throw std::invalid_argument(what + " must be bytes, got " +
                                std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  char* data = nullptr;
  Py_ssize_t len = 0;
  PyBytes_AsStringAndSize(obj.ptr(), &data, &len);
  return {data, static_cast<size_t>(len)};
}

int64_t Int(const py::handle& obj, const std::string& what) {
  if (!PyLong_Check(obj.ptr()) || PyBool_Check(obj.ptr())) {
    throw std::invalid_argument(what + " must be an int, got " +
                                std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
  if (overflow != 0) throw std::invalid_argument(what + " is out of range");
  return v;
}

int Int32(const py::handle& obj, const std::string& what) {
  const int64_t v = Int(obj, what);
  if (v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(what + " is out of range");
  return static_cast<int>(v);
}

const uint8_t* Fixed(const py::handle& obj, size_t n, const std::string& what) {
  const std::string_view v = View(obj, what);
  if (v.size() != n) {
    throw std::invalid_argument(what + " has " + std::to_string(v.size()) + " bytes, needs " +
                                std::to_string(n));
  }
  return reinterpret_cast<const uint8_t*>(v.data());
}
const uint8_t* Key(const py::handle& obj, const std::string& what) { return Fixed(obj, 32, what); }
const uint8_t* Iv(const py::handle& obj, const std::string& what) { return Fixed(obj, 16, what); }
const uint8_t* Data(std::string_view v) { return reinterpret_cast<const uint8_t*>(v.data()); }

// ---- X25519, PBKDF2, AES ------------------------------------------------------------------

py::tuple X25519Keypair() {
  crypto::X25519KeyPair pair = crypto::X25519Generate();
  return py::make_tuple(ToBytes(pair.private_key.data(), 32), ToBytes(pair.public_key.data(), 32));
}

py::bytes X25519Public(const py::object& private_key) {
  const Key32 key(Key(private_key, "private"));
  const crypto::PublicKey pub = crypto::X25519Public(key);
  return ToBytes(pub.data(), pub.size());
}

py::bytes X25519(const py::object& private_key, const py::object& peer_public) {
  const Key32 key(Key(private_key, "private"));
  crypto::PublicKey peer;
  std::copy_n(Key(peer_public, "peer_public"), 32, peer.begin());
  const Key32 shared = crypto::X25519Shared(key, peer);
  return ToBytes(shared.data(), shared.size());
}

py::bytes Pbkdf2(const py::object& password, const py::object& salt, const py::object& iterations_obj,
                 const py::object& length_obj) {
  const int64_t iterations = Int(iterations_obj, "iterations");
  const int64_t length = Int(length_obj, "length");
  if (iterations < 1) throw std::invalid_argument("iterations must be >= 1");
  if (length < 1 || length > (int64_t{1} << 30)) {
    throw std::invalid_argument("length must be in [1, 2^30], got " + std::to_string(length));
  }
  const std::string_view pw = View(password, "password");
  const std::string_view s = View(salt, "salt");
  std::vector<uint8_t> out(static_cast<size_t>(length));
  {
    py::gil_scoped_release nogil;
    crypto::Pbkdf2Sha256(Data(pw), pw.size(), Data(s), s.size(),
                         static_cast<uint64_t>(iterations), out.data(), out.size());
  }
  py::bytes result = ToBytes(out);
  OPENSSL_cleanse(out.data(), out.size());
  return result;
}

using CipherFn = std::vector<uint8_t> (*)(const uint8_t*, const uint8_t*, const uint8_t*, size_t);

py::bytes RunCipher(CipherFn fn, const py::object& key, const py::object& iv, const py::object& data,
                    const char* data_name) {
  const uint8_t* k = Key(key, "key");
  const uint8_t* v = Iv(iv, "iv");
  const std::string_view d = View(data, data_name);
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release nogil;
    out = fn(k, v, Data(d), d.size());
  }
  return ToBytes(out);
}

// ---- masks ---------------------------------------------------------------------------------

py::array_t<float> MaskValues(const py::object& key, const py::object& iv, const py::object& n_obj) {
  const int64_t n = Int(n_obj, "n");
  if (n < 0) throw std::invalid_argument("n must be >= 0, got " + std::to_string(n));
  const uint8_t* k = Key(key, "key");
  const uint8_t* v = Iv(iv, "iv");
  py::array_t<float> out(static_cast<py::ssize_t>(n));
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    crypto::MaskValues(k, v, dst, static_cast<size_t>(n));
  }
  return out;
}

std::vector<crypto::MaskTarget> Targets(const py::sequence& arrays) {
  std::vector<crypto::MaskTarget> targets;
  const auto dtype = py::dtype::of<float>();
  for (size_t j = 0; j < py::len(arrays); ++j) {
    py::object item = arrays[j];
    const std::string what = "arrays[" + std::to_string(j) + "]";
    if (!py::isinstance<py::array>(item)) {
      throw std::invalid_argument(what + " must be a numpy array, got " +
                                  std::string(py::str(py::type::of(item).attr("__name__"))));
    }
    auto a = py::reinterpret_borrow<py::array>(item);
    if (!a.dtype().is(dtype) && !a.dtype().equal(dtype)) {
      throw std::invalid_argument(what + " has dtype " + std::string(py::str(a.dtype())) +
                                  ", needs float32");
    }
    if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(what + " is not C-contiguous");
    if (!a.writeable()) throw std::invalid_argument(what + " is read-only");
    targets.push_back({static_cast<float*>(a.mutable_data()), static_cast<size_t>(a.size())});
  }
  // Threads split the index range, not the arrays: two views of one buffer would race.
  std::vector<size_t> order(targets.size());
  for (size_t j = 0; j < order.size(); ++j) order[j] = j;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return targets[a].data < targets[b].data; });
  for (size_t j = 1; j < order.size(); ++j) {
    const auto& prev = targets[order[j - 1]];
    const auto& cur = targets[order[j]];
    if (prev.size > 0 && cur.size > 0 && cur.data < prev.data + prev.size) {
      throw std::invalid_argument("arrays[" + std::to_string(order[j]) + "] overlaps arrays[" +
                                  std::to_string(order[j - 1]) + "]");
    }
  }
  return targets;
}

py::sequence Tuple(const py::handle& item, size_t n, const std::string& what) {
  if (!py::isinstance<py::tuple>(item) || py::len(item) != n) {
    throw std::invalid_argument(what + " must be a tuple of " + std::to_string(n) + " items");
  }
  return py::reinterpret_borrow<py::sequence>(item);
}

float Coeff(const py::handle& obj, const std::string& what) {
  if (!PyFloat_Check(obj.ptr()) && !PyLong_Check(obj.ptr())) {
    throw std::invalid_argument(what + " (coeff) must be a float");
  }
  return static_cast<float>(obj.cast<double>());
}

std::vector<crypto::SeedMask> Seeds(const py::sequence& seeds) {
  std::vector<crypto::SeedMask> out(py::len(seeds));
  for (size_t j = 0; j < out.size(); ++j) {
    const std::string what = "seeds[" + std::to_string(j) + "]";
    py::sequence s = Tuple(seeds[j], 3, what);
    out[j].key = Key32(Key(s[0], what + "[0] (key)"));
    std::copy_n(Iv(s[1], what + "[1] (iv)"), 16, out[j].iv.begin());
    out[j].coeff = Coeff(s[2], what + "[2]");
  }
  return out;
}

std::vector<crypto::PairMask> Pairs(const py::sequence& pairs) {
  std::vector<crypto::PairMask> out(py::len(pairs));
  for (size_t j = 0; j < out.size(); ++j) {
    const std::string what = "pairs[" + std::to_string(j) + "]";
    py::sequence s = Tuple(pairs[j], 5, what);
    out[j].private_key = Key32(Key(s[0], what + "[0] (private)"));
    std::copy_n(Key(s[1], what + "[1] (peer_public)"), 32, out[j].peer_public.begin());
    const std::string_view salt = View(s[2], what + "[2] (salt)");
    out[j].salt.assign(Data(salt), Data(salt) + salt.size());
    std::copy_n(Iv(s[3], what + "[3] (iv)"), 16, out[j].iv.begin());
    out[j].coeff = Coeff(s[4], what + "[4]");
  }
  return out;
}

py::sequence Sequence(const py::object& obj, const std::string& what) {
  if (!PySequence_Check(obj.ptr()) || PyBytes_Check(obj.ptr()) || PyUnicode_Check(obj.ptr())) {
    throw std::invalid_argument(what + " must be a sequence");
  }
  return py::reinterpret_borrow<py::sequence>(obj);
}

void AddMasks(const py::object& arrays_obj, const py::object& seeds_obj, const py::object& pairs_obj,
              const py::object& threads_obj) {
  const int64_t threads = Int(threads_obj, "threads");
  const py::sequence arrays = Sequence(arrays_obj, "arrays");
  const py::sequence seeds = Sequence(seeds_obj, "seeds");
  const py::sequence pairs = Sequence(pairs_obj, "pairs");
  if (threads < 0 || threads > 1024) {
    throw std::invalid_argument("threads must be in [0, 1024], got " + std::to_string(threads));
  }
  // The arrays stay alive through `arrays`, which the caller holds for the call.
  const std::vector<crypto::MaskTarget> targets = Targets(arrays);
  const std::vector<crypto::SeedMask> s = Seeds(seeds);
  const std::vector<crypto::PairMask> p = Pairs(pairs);
  py::gil_scoped_release nogil;
  crypto::AddMasks(targets, s, p, static_cast<unsigned>(threads));
}

// ---- Shamir ----------------------------------------------------------------------------------

void AddRingMasks(const py::object& array_obj, const py::object& seeds_obj, const py::object& pairs_obj,
                  const py::object& threads_obj) {
  const int64_t threads = Int(threads_obj, "threads");
  const py::sequence seeds = Sequence(seeds_obj, "seeds");
  const py::sequence pairs = Sequence(pairs_obj, "pairs");
  if (threads < 0 || threads > 1024) {
    throw std::invalid_argument("threads must be in [0, 1024], got " + std::to_string(threads));
  }
  if (!py::isinstance<py::array>(array_obj)) throw std::invalid_argument("array must be a numpy array");
  auto a = py::reinterpret_borrow<py::array>(array_obj);
  const auto dtype = py::dtype::of<uint32_t>();
  if (!a.dtype().is(dtype) && !a.dtype().equal(dtype)) {
    throw std::invalid_argument("array has dtype " + std::string(py::str(a.dtype())) + ", needs uint32");
  }
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument("array is not C-contiguous");
  if (!a.writeable()) throw std::invalid_argument("array is read-only");
  const std::vector<crypto::SeedMask> s = Seeds(seeds);
  const std::vector<crypto::PairMask> p = Pairs(pairs);
  for (size_t j = 0; j < s.size(); ++j) {
    if (s[j].coeff != 1.0f && s[j].coeff != -1.0f) {
      throw std::invalid_argument("seeds[" + std::to_string(j) + "][2] (coeff) must be 1 or -1");
    }
  }
  for (size_t j = 0; j < p.size(); ++j) {
    if (p[j].coeff != 1.0f && p[j].coeff != -1.0f) {
      throw std::invalid_argument("pairs[" + std::to_string(j) + "][4] (coeff) must be 1 or -1");
    }
  }
  uint32_t* data = static_cast<uint32_t*>(a.mutable_data());
  const size_t n = static_cast<size_t>(a.size());
  py::gil_scoped_release nogil;
  crypto::AddRingMasks(data, n, s, p, static_cast<unsigned>(threads));
}

crypto::Bytes Copy(const py::handle& obj, const std::string& what) {
  const std::string_view v = View(obj, what);
  return crypto::Bytes(Data(v), Data(v) + v.size());
}

py::bytes SafePrime(const py::object& bits_obj) {
  const int bits = Int32(bits_obj, "bits");
  crypto::Bytes p;
  {
    py::gil_scoped_release nogil;
    p = crypto::GenerateSafePrime(bits);
  }
  return ToBytes(p);
}

py::list ShamirSplit(const py::object& secret, const py::object& t_obj, const py::object& n_obj,
                     const py::object& prime) {
  const int t = Int32(t_obj, "t");
  const int n = Int32(n_obj, "n");
  crypto::Bytes s = Copy(secret, "secret");
  const crypto::Bytes p = Copy(prime, "prime");
  std::vector<crypto::Bytes> shares;
  {
    py::gil_scoped_release nogil;
    shares = crypto::ShamirSplit(s, t, n, p);
  }
  OPENSSL_cleanse(s.data(), s.size());
  py::list out;
  for (auto& share : shares) {
    out.append(ToBytes(share));
    OPENSSL_cleanse(share.data(), share.size());
  }
  return out;
}

py::bytes ShamirCombine(const py::object& shares_obj, const py::object& t_obj, const py::object& prime,
                        const py::object& length_obj) {
  const py::sequence shares = Sequence(shares_obj, "shares");
  const int t = Int32(t_obj, "t");
  const int64_t length = Int(length_obj, "length");
  if (length < 0 || length > 4096) {
    throw std::invalid_argument("length must be in [0, 4096], got " + std::to_string(length));
  }
  if (t < 1) throw std::invalid_argument("t must be >= 1, got " + std::to_string(t));
  const size_t k = std::min(py::len(shares), static_cast<size_t>(t));  // only the first t count
  std::vector<std::pair<int64_t, crypto::Bytes>> items;
  items.reserve(k);
  for (size_t j = 0; j < k; ++j) {
    const std::string what = "shares[" + std::to_string(j) + "]";
    py::sequence s = Tuple(shares[j], 2, what);
    if (!PyLong_Check(s[0].ptr()) || PyBool_Check(s[0].ptr())) {
      throw std::invalid_argument(what + "[0] (index) must be an int");
    }
    int overflow = 0;
    const long long index = PyLong_AsLongLongAndOverflow(s[0].ptr(), &overflow);
    if (overflow != 0) throw CryptoError(what + " has an index out of range");
    items.emplace_back(static_cast<int64_t>(index), Copy(s[1], what + "[1] (share)"));
  }
  const crypto::Bytes p = Copy(prime, "prime");
  crypto::Bytes secret;
  {
    py::gil_scoped_release nogil;
    try {
      secret = crypto::ShamirCombine(items, t, p, static_cast<size_t>(length));
    } catch (...) {
      for (auto& item : items) OPENSSL_cleanse(item.second.data(), item.second.size());
      throw;
    }
  }
  for (auto& item : items) OPENSSL_cleanse(item.second.data(), item.second.size());
  py::bytes result = ToBytes(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return result;
}

py::bytes RandomBytes(size_t n) {
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release nogil;
    out = crypto::RandomBytes(n);
  }
  return ToBytes(out);
}

}  // namespace

void BindCrypto(py::module_ m) {
  m.def("random_bytes", &RandomBytes, py::arg("n"),
        "n bytes from OpenSSL's CSPRNG (RAND_bytes). Raises CryptoError if it fails.");
  m.def("x25519_keypair", &X25519Keypair,
        "A fresh X25519 key pair (private 32 B, public 32 B), raw bytes as MindSpore sends them.");
  m.def("x25519_public", &X25519Public, py::arg("private"),
        "The X25519 public key of a raw 32-byte private key. ValueError for a wrong length.");
  m.def("x25519", &X25519, py::arg("private"), py::arg("peer_public"),
        "The raw 32-byte X25519 shared secret. ValueError for wrong lengths; CryptoError if the "
        "result is all zero (a low-order peer key) or libcrypto fails.");
  m.def("pbkdf2_sha256", &Pbkdf2, py::arg("password"), py::arg("salt"),
        py::arg("iterations") = 10000, py::arg("length") = 32,
        "PBKDF2-HMAC-SHA256 (RFC 8018). ValueError for iterations < 1 or length outside "
        "[1, 2^30]. Releases the GIL.");
  m.def(
      "aes256_ctr",
      [](const py::object& key, const py::object& iv, const py::object& data) {
        return RunCipher(&crypto::Aes256Ctr, key, iv, data, "data");
      },
      py::arg("key"), py::arg("iv"), py::arg("data"),
      "data XOR the AES-256-CTR keystream (iv = initial 128-bit big-endian counter). "
      "ValueError unless key is 32 and iv 16 bytes. Releases the GIL.");
  m.def(
      "aes256_cbc_encrypt",
      [](const py::object& key, const py::object& iv, const py::object& plaintext) {
        return RunCipher(&crypto::Aes256CbcEncrypt, key, iv, plaintext, "plaintext");
      },
      py::arg("key"), py::arg("iv"), py::arg("plaintext"),
      "AES-256-CBC with PKCS#7 padding; returns the ciphertext only (IV not prepended).");
  m.def(
      "aes256_cbc_decrypt",
      [](const py::object& key, const py::object& iv, const py::object& ciphertext) {
        return RunCipher(&crypto::Aes256CbcDecrypt, key, iv, ciphertext, "ciphertext");
      },
      py::arg("key"), py::arg("iv"), py::arg("ciphertext"),
      "Inverse of aes256_cbc_encrypt. CryptoError for a length that is not a positive multiple "
      "of 16 or bad padding.");
  m.def("mask_values", &MaskValues, py::arg("key"), py::arg("iv"), py::arg("n"),
        "MindSpore's mask PRG: n float32 values (float)v / (float)INT32_MAX of the little-endian "
        "int32 words of the AES-256-CTR keystream of (key, iv). Releases the GIL.");
  m.def("add_masks", &AddMasks, py::arg("arrays"), py::arg("seeds"), py::arg("pairs"),
        py::arg("threads") = 0,
        "In place, for each array a (writeable C-contiguous float32, not overlapping another): "
        "a[i] += sum over pairs (private, peer_public, salt, iv, coeff) of "
        "coeff*PRG(PBKDF2_SHA256(X25519(private, peer_public), salt, 10000, 32), iv)[i], then "
        "over seeds (key, iv, coeff) of coeff*PRG(key, iv)[i]; each array from PRG offset 0, "
        "float32 arithmetic, one term at a time in that order. threads=0: all cores. "
        "ValueError for bad arguments (checked first); CryptoError for a low-order peer key "
        "or a libcrypto failure. Releases the GIL for the whole computation.");
  m.def("add_ring_masks", &AddRingMasks, py::arg("array"), py::arg("seeds"), py::arg("pairs"),
        py::arg("threads") = 0,
        "In place, for a writeable C-contiguous uint32 array a: a[i] += sum over pairs (private, "
        "peer_public, salt, iv, coeff) and seeds (key, iv, coeff) of coeff*W[i] mod 2^32, W the "
        "keystream of add_masks' PRG (same key derivation) read as little-endian uint32 words, "
        "from offset 0; coeff must be 1 or -1. threads=0: all cores. ValueError for bad "
        "arguments; CryptoError for a low-order peer key or a libcrypto failure. Releases the GIL.");
  m.def("generate_safe_prime", &SafePrime, py::arg("bits") = 264,
        "A safe prime of exactly `bits` bits (BN_generate_prime_ex, safe=1), big-endian in "
        "ceil(bits/8) bytes. Releases the GIL.");
  m.def("shamir_split", &ShamirSplit, py::arg("secret"), py::arg("t"), py::arg("n"),
        py::arg("prime"),
        "Shares f(1..n) of the big-endian secret (< prime), threshold t, as minimal big-endian "
        "bytes (zero is b''), as MindSpore's Java ShareSecrets.split. ValueError for bad t, n, "
        "or a secret not below the prime.");
  m.def("shamir_combine", &ShamirCombine, py::arg("shares"), py::arg("t"), py::arg("prime"),
        py::arg("length") = 32,
        "Lagrange interpolation at 0 over the first t (index, share) pairs, left-padded to "
        "`length` bytes. CryptoError for fewer than t shares, a zero, negative or repeated "
        "index, a share not below the prime, or a result wider than `length`.");
}

}  // namespace mindfed::bindings
