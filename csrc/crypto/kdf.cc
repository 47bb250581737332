#include "crypto/kdf.h"

// SHA256_Transform is deprecated in OpenSSL 3 but still exported; EVP has no way to run the
// bare compression function, which is what makes the 10000 iterations cheap.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace mindfed::crypto {
namespace {

constexpr size_t kBlock = SHA256_CBLOCK;           // 64
constexpr size_t kDigest = SHA256_DIGEST_LENGTH;  // 32

void StoreDigest(const SHA256_CTX& c, uint8_t* out) {
  for (size_t i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<uint8_t>(c.h[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(c.h[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(c.h[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(c.h[i]);
  }
}

// HMAC-SHA256 keyed once: the states after absorbing key^ipad and key^opad.
struct HmacStates {
  SHA256_CTX inner;
  SHA256_CTX outer;
  ~HmacStates() { OPENSSL_cleanse(this, sizeof *this); }
};

void InitHmac(const uint8_t* key, size_t key_len, HmacStates* s) {
  uint8_t k[kBlock] = {};
  if (key_len > kBlock) {
    SHA256(key, key_len, k);
  } else if (key_len > 0) {
    std::copy(key, key + key_len, k);
  }
  uint8_t pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
  SHA256_Init(&s->inner);
  SHA256_Update(&s->inner, pad, kBlock);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&s->outer);
  SHA256_Update(&s->outer, pad, kBlock);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
}

// T_i = U_1 ^ ... ^ U_c for block index i (RFC 8018 F function).
void PbkdfBlock(const HmacStates& s, const uint8_t* salt, size_t salt_len, uint32_t index,
                uint64_t iterations, uint8_t t[kDigest]) {
  const uint8_t be_index[4] = {static_cast<uint8_t>(index >> 24), static_cast<uint8_t>(index >> 16),
                               static_cast<uint8_t>(index >> 8), static_cast<uint8_t>(index)};
  SHA256_CTX c = s.inner;
  SHA256_Update(&c, salt, salt_len);
  SHA256_Update(&c, be_index, 4);
  // One padded block holds U (32 bytes) for every later HMAC: the message after the 64-byte
  // key block is 32 bytes, so the total length is 96 bytes = 768 bits.
  uint8_t block[kBlock] = {};
  SHA256_Final(block, &c);
  c = s.outer;
  SHA256_Update(&c, block, kDigest);
  SHA256_Final(block, &c);
  std::copy(block, block + kDigest, t);
  block[kDigest] = 0x80;
  block[kBlock - 2] = 0x03;  // 768 = 0x0300, big-endian in the last 8 bytes
  block[kBlock - 1] = 0x00;
  for (uint64_t it = 1; it < iterations; ++it) {
    c = s.inner;
    SHA256_Transform(&c, block);
    StoreDigest(c, block);
    c = s.outer;
    SHA256_Transform(&c, block);
    StoreDigest(c, block);
    for (size_t i = 0; i < kDigest; ++i) t[i] ^= block[i];
  }
  OPENSSL_cleanse(&c, sizeof c);
  OPENSSL_cleanse(block, sizeof block);
}

}  // namespace

void Pbkdf2Sha256(const uint8_t* password, size_t password_len, const uint8_t* salt,
                  size_t salt_len, uint64_t iterations, uint8_t* out, size_t out_len) {
  if (iterations < 1) throw std::invalid_argument("pbkdf2_sha256: iterations must be >= 1");
  if (out_len < 1 || out_len / kDigest >= 0xffffffffu) {
    throw std::invalid_argument("pbkdf2_sha256: length " + std::to_string(out_len) +
                                " is outside [1, 32 * (2^32 - 1)]");
  }
  HmacStates s;
  InitHmac(password, password_len, &s);
  uint8_t t[kDigest];
  for (size_t done = 0, index = 1; done < out_len; done += kDigest, ++index) {
    PbkdfBlock(s, salt, salt_len, static_cast<uint32_t>(index), iterations, t);
    std::copy(t, t + std::min(kDigest, out_len - done), out + done);
  }
  OPENSSL_cleanse(t, sizeof t);
}

}  // namespace mindfed::crypto
