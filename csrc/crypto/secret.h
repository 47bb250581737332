// Fixed-size byte arrays that hold key material and wipe themselves (OPENSSL_cleanse) when
// destroyed, so derived keys and shared secrets do not linger in freed memory.
//
// Copies are allowed (each copy wipes itself too); the compiler may still spill bytes to
// registers or the stack, which no portable code can prevent. Not thread-safe to mutate one
// instance from several threads; concurrent reads are fine.
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mindfed::crypto {

template <size_t N>
class SecretArray {
 public:
  SecretArray() { bytes_.fill(0); }
  explicit SecretArray(const uint8_t* src) { std::memcpy(bytes_.data(), src, N); }
  SecretArray(const SecretArray&) = default;
  SecretArray& operator=(const SecretArray&) = default;
  ~SecretArray() { OPENSSL_cleanse(bytes_.data(), N); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return N; }

 private:
  std::array<uint8_t, N> bytes_;
};

using Key32 = SecretArray<32>;  // an AES-256 key, an X25519 private key or shared secret

constexpr size_t kX25519KeyBytes = 32;
constexpr size_t kAes256KeyBytes = 32;
constexpr size_t kAesBlockBytes = 16;  // also the IV length of CTR and CBC

}  // namespace mindfed::crypto
