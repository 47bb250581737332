// Shamir secret sharing over a prime field, byte-compatible with MindSpore's PW_ENCRYPT:
// the Java client splits (ShareSecrets.split, BaseUtil.bigInteger2byteArray) and the server
// combines (secret_sharing.cc::Combine) with a prime from GetPrime (BN_generate_prime_ex,
// 264 bits, safe). One deliberate difference: Combine left-pads the secret to a fixed length,
// where MindSpore writes the minimal bytes left-aligned and so corrupts secrets whose top byte
// is zero.
//
// Integers are big-endian byte strings. Shares are minimal big-endian (no leading zero bytes;
// zero is the empty string). All functions are thread-safe; coefficients and intermediate
// values are freed with BN_clear_free. Caller bugs (bad t, n, a secret not below the prime)
// throw std::invalid_argument; bad shares and libcrypto failures throw CryptoError. Messages
// name counts and indices, never share or secret bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mindfed::crypto {

using Bytes = std::vector<uint8_t>;

// A safe prime p (p and (p-1)/2 prime) of exactly `bits` bits, big-endian in ceil(bits/8)
// bytes. 16 <= bits <= 4096 (std::invalid_argument otherwise). CryptoError if libcrypto fails.
Bytes GenerateSafePrime(int bits);

// Shares f(1..n) of f(x) = secret + c_1 x + ... + c_{t-1} x^{t-1} mod prime, with c_j drawn
// uniformly from (0, prime) by OpenSSL's private CSPRNG. Requires 1 <= t <= n, n < prime,
// prime >= 3 (not tested for primality) and secret < prime.
std::vector<Bytes> ShamirSplit(const Bytes& secret, int t, int n, const Bytes& prime);

// Lagrange interpolation at 0 over the first t of `shares` ((index, value) pairs), returned
// left-padded with zeros to `length` bytes. CryptoError for fewer than t shares, an index that
// is zero, negative, repeated or not below the prime, a value not below the prime, or a
// result wider than `length` (a wrong share gives a random-looking field element, which is
// usually that wide).
Bytes ShamirCombine(const std::vector<std::pair<int64_t, Bytes>>& shares, int t,
                    const Bytes& prime, size_t length);

}  // namespace mindfed::crypto
