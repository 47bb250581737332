#include "crypto/shamir.h"

#include <openssl/bn.h>

#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "common/errors.h"
#include "crypto/openssl_error.h"

namespace mindfed::crypto {
namespace {

struct BnFree {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
struct CtxFree {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;
using BnCtx = std::unique_ptr<BN_CTX, CtxFree>;

Bn NewBn() {
  Bn b(BN_new());
  if (!b) ThrowOpenSslError("BN_new");
  return b;
}

Bn FromBytes(const Bytes& bytes) {
  Bn b(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!b) ThrowOpenSslError("BN_bin2bn");
  return b;
}

Bn FromWord(uint64_t w) {
  Bn b = NewBn();
  if (BN_set_word(b.get(), w) != 1) ThrowOpenSslError("BN_set_word");
  return b;
}

BnCtx NewCtx() {
  BnCtx ctx(BN_CTX_secure_new());
  if (!ctx) ThrowOpenSslError("BN_CTX_new");
  return ctx;
}

Bytes Minimal(const BIGNUM* b) {
  Bytes out(static_cast<size_t>(BN_num_bytes(b)));
  BN_bn2bin(b, out.data());
  return out;
}

void Check(int ok, const char* what) {
  if (ok != 1) ThrowOpenSslError(what);
}

}  // namespace

Bytes GenerateSafePrime(int bits) {
  if (bits < 16 || bits > 4096) {
    throw std::invalid_argument("generate_safe_prime: bits = " + std::to_string(bits) +
                                " is outside [16, 4096]");
  }
  Bn p = NewBn();
  Check(BN_generate_prime_ex(p.get(), bits, 1, nullptr, nullptr, nullptr), "BN_generate_prime_ex");
  Bytes out(static_cast<size_t>((bits + 7) / 8));
  if (BN_num_bits(p.get()) != bits || BN_bn2binpad(p.get(), out.data(), static_cast<int>(out.size())) < 0) {
    throw CryptoError("BN_generate_prime_ex returned a prime of the wrong size");
  }
  return out;
}

std::vector<Bytes> ShamirSplit(const Bytes& secret, int t, int n, const Bytes& prime) {
  if (t < 1 || n < t) {
    throw std::invalid_argument("shamir_split: needs 1 <= t <= n, got t = " + std::to_string(t) +
                                ", n = " + std::to_string(n));
  }
  Bn p = FromBytes(prime);
  if (BN_cmp(p.get(), FromWord(3).get()) < 0) {
    throw std::invalid_argument("shamir_split: the prime must be at least 3");
  }
  if (BN_cmp(FromWord(static_cast<uint64_t>(n)).get(), p.get()) >= 0) {
    throw std::invalid_argument("shamir_split: n = " + std::to_string(n) +
                                " shares need n < prime");
  }
  Bn s = FromBytes(secret);
  if (BN_cmp(s.get(), p.get()) >= 0) {
    throw std::invalid_argument("shamir_split: the secret is not below the prime");
  }
  BnCtx ctx = NewCtx();
  std::vector<Bn> coeff;  // c_1 .. c_{t-1}, uniform in (0, prime) as Java's randomZp
  for (int j = 1; j < t; ++j) {
    Bn c = NewBn();
    do {
      Check(BN_priv_rand_range(c.get(), p.get()), "BN_priv_rand_range");
    } while (BN_is_zero(c.get()));
    coeff.push_back(std::move(c));
  }
  std::vector<Bytes> shares;
  shares.reserve(static_cast<size_t>(n));
  Bn y = NewBn();
  Bn x = NewBn();
  for (int i = 1; i <= n; ++i) {
    Check(BN_set_word(x.get(), static_cast<BN_ULONG>(i)), "BN_set_word");
    // Horner: the same field element as Java's Σ c_j·i^j.
    BN_zero(y.get());
    for (int j = t - 2; j >= 0; --j) {
      Check(BN_mod_add(y.get(), y.get(), coeff[static_cast<size_t>(j)].get(), p.get(), ctx.get()),
            "BN_mod_add");
      Check(BN_mod_mul(y.get(), y.get(), x.get(), p.get(), ctx.get()), "BN_mod_mul");
    }
    Check(BN_mod_add(y.get(), y.get(), s.get(), p.get(), ctx.get()), "BN_mod_add");
    shares.push_back(Minimal(y.get()));
  }
  return shares;
}

Bytes ShamirCombine(const std::vector<std::pair<int64_t, Bytes>>& shares, int t,
                    const Bytes& prime, size_t length) {
  if (t < 1) throw std::invalid_argument("shamir_combine: t = " + std::to_string(t) + " < 1");
  if (shares.size() < static_cast<size_t>(t)) {
    throw CryptoError(std::to_string(shares.size()) + " shares, threshold is " +
                      std::to_string(t));
  }
  Bn p = FromBytes(prime);
  if (BN_cmp(p.get(), FromWord(3).get()) < 0) {
    throw std::invalid_argument("shamir_combine: the prime must be at least 3");
  }
  const auto k = static_cast<size_t>(t);
  std::vector<Bn> x, y;
  std::set<int64_t> seen;
  for (size_t j = 0; j < k; ++j) {
    const int64_t index = shares[j].first;
    if (index <= 0) {
      throw CryptoError("share " + std::to_string(j) + " has index " + std::to_string(index) +
                        ", indices start at 1");
    }
    if (!seen.insert(index).second) {
      throw CryptoError("share index " + std::to_string(index) + " appears twice");
    }
    x.push_back(FromWord(static_cast<uint64_t>(index)));
    if (BN_cmp(x.back().get(), p.get()) >= 0) {
      throw CryptoError("share index " + std::to_string(index) + " is not below the prime");
    }
    y.push_back(FromBytes(shares[j].second));
    if (BN_cmp(y.back().get(), p.get()) >= 0) {
      throw CryptoError("share " + std::to_string(index) + " is not below the prime");
    }
  }
  BnCtx ctx = NewCtx();
  Bn sum = NewBn();
  Bn num = NewBn();
  Bn den = NewBn();
  Bn diff = NewBn();
  Bn term = NewBn();
  BN_zero(sum.get());
  for (size_t j = 0; j < k; ++j) {
    // l_j(0) = Π_{m≠j} x_m / (x_m - x_j)
    Check(BN_one(num.get()), "BN_one");
    Check(BN_one(den.get()), "BN_one");
    for (size_t m = 0; m < k; ++m) {
      if (m == j) continue;
      Check(BN_mod_mul(num.get(), num.get(), x[m].get(), p.get(), ctx.get()), "BN_mod_mul");
      Check(BN_mod_sub(diff.get(), x[m].get(), x[j].get(), p.get(), ctx.get()), "BN_mod_sub");
      Check(BN_mod_mul(den.get(), den.get(), diff.get(), p.get(), ctx.get()), "BN_mod_mul");
    }
    if (BN_mod_inverse(den.get(), den.get(), p.get(), ctx.get()) == nullptr) {
      ThrowOpenSslError("Lagrange denominator inverse (is the modulus prime?)");
    }
    Check(BN_mod_mul(term.get(), num.get(), den.get(), p.get(), ctx.get()), "BN_mod_mul");
    Check(BN_mod_mul(term.get(), term.get(), y[j].get(), p.get(), ctx.get()), "BN_mod_mul");
    Check(BN_mod_add(sum.get(), sum.get(), term.get(), p.get(), ctx.get()), "BN_mod_add");
  }
  const auto width = static_cast<size_t>(BN_num_bytes(sum.get()));
  if (width > length) {
    throw CryptoError("the combined secret has " + std::to_string(width) +
                      " bytes, more than the expected " + std::to_string(length) +
                      " (wrong or mismatched shares)");
  }
  Bytes out(length);
  if (length > 0 && BN_bn2binpad(sum.get(), out.data(), static_cast<int>(length)) < 0) {
    ThrowOpenSslError("BN_bn2binpad");
  }
  return out;
}

}  // namespace mindfed::crypto
