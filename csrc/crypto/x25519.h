// X25519 key agreement (RFC 7748) through libcrypto's EVP_PKEY_X25519, with raw 32-byte keys
// as MindSpore's server (key_agreement.cc) and Java client (BouncyCastle X25519) exchange them.
//
// Private keys are the raw 32 bytes; clamping happens inside the scalar multiplication, so
// any 32 bytes are a valid private key. All functions are thread-safe and allocate nothing
// that outlives the call. Failures throw CryptoError; messages never contain key bytes.
#pragma once

#include <array>
#include <cstdint>

#include "crypto/secret.h"

namespace mindfed::crypto {

using PublicKey = std::array<uint8_t, kX25519KeyBytes>;

struct X25519KeyPair {
  Key32 private_key;
  PublicKey public_key;
};

// A fresh key pair from OpenSSL's CSPRNG. CryptoError if libcrypto fails.
X25519KeyPair X25519Generate();

// The public key (u-coordinate of clamp(private)·9). CryptoError if libcrypto fails.
PublicKey X25519Public(const Key32& private_key);

// The raw 32-byte shared secret X25519(private_key, peer_public). CryptoError when the result
// is all zero (the peer sent a low-order point: RFC 7748 §6.1 says to abort) or libcrypto
// fails otherwise.
Key32 X25519Shared(const Key32& private_key, const PublicKey& peer_public);

}  // namespace mindfed::crypto
