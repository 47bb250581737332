#include "crypto/prg.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "common/target_clones.h"
#include "crypto/aes.h"

namespace mindfed::crypto {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the mask words are little-endian int32; add a byte swap for this host");

constexpr float kInvInt32Max = 0x1p-31f;  // 1 / (float)INT32_MAX, exactly

alignas(64) const uint8_t kZeros[kMaskChunkBytes] = {};

}  // namespace

float MaskValue(const uint8_t word[4]) {
  int32_t v;
  std::memcpy(&v, word, 4);
  return static_cast<float>(v) * kInvInt32Max;
}

MINDFED_TARGET_CLONES
void FoldKeystream(const uint8_t* keystream, float coeff, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    int32_t v;
    std::memcpy(&v, keystream + 4 * i, 4);
    dst[i] += coeff * (static_cast<float>(v) * kInvInt32Max);
  }
}

MINDFED_TARGET_CLONES
void FoldRingKeystream(const uint8_t* keystream, bool subtract, uint32_t* dst, size_t n) {
  if (subtract) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, keystream + 4 * i, 4);
      dst[i] -= v;
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, keystream + 4 * i, 4);
      dst[i] += v;
    }
  }
}

void MaskValues(const uint8_t key[32], const uint8_t iv[16], float* out, size_t n) {
  AesCtrStream stream;
  stream.Start(key, iv, 0);
  alignas(64) uint8_t ks[kMaskChunkBytes];
  for (size_t at = 0; at < n; at += kMaskChunkValues) {
    const size_t m = std::min(kMaskChunkValues, n - at);
    stream.Apply(kZeros, ks, 4 * m);
    for (size_t i = 0; i < m; ++i) out[at + i] = MaskValue(ks + 4 * i);
  }
  OPENSSL_cleanse(ks, sizeof ks);
}

const uint8_t* ZeroChunk() { return kZeros; }

}  // namespace mindfed::crypto
