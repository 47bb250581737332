// PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), the KDF of MindSpore's PW_ENCRYPT: the password is the
// raw X25519 shared secret, 10000 iterations, 32-byte output (key_agreement.cc::Exchange,
// KEYAgreement.getEncryptedPassword).
//
// The iterations run on precomputed HMAC inner/outer SHA-256 states, two compression-function
// calls each (libcrypto's SHA256_Transform, SHA-NI where the CPU has it), about 2.5x faster
// than PKCS5_PBKDF2_HMAC, which rebuilds HMAC contexts on every iteration; the bytes are the
// same (tests compare with hashlib and published vectors).
//
// Thread-safe; allocates nothing; wipes its intermediate states. Limits: iterations >= 1,
// 1 <= out_len <= 32 * (2^32 - 1); std::invalid_argument otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mindfed::crypto {

constexpr unsigned kPwPbkdf2Iterations = 10000;  // MindSpore's PBKDF2_ITERATIONS / ITERATION

void Pbkdf2Sha256(const uint8_t* password, size_t password_len, const uint8_t* salt,
                  size_t salt_len, uint64_t iterations, uint8_t* out, size_t out_len);

}  // namespace mindfed::crypto
