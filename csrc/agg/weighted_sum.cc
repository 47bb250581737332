#include "agg/weighted_sum.h"

#include <algorithm>
#include <cstring>

#include "common/target_clones.h"
#include "common/vec16.h"

namespace mindfed::agg {
namespace {

using vec::kLanes;
using vec::Load;
using vec::LoadOne;
using vec::Store;
using vec::StoreOne;
using vec::V16;

#pragma GCC diagnostic ignored "-Wpsabi"

// The block kernels are always_inline so that each ISA clone of the caller gets its own copy.
__attribute__((always_inline)) inline void Axpy1(float w, const float* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) Store(d + i, Load(d + i) + w * Load(s + i));
  for (; i < n; ++i) StoreOne(d + i, LoadOne(d + i) + w * LoadOne(s + i));
}

__attribute__((always_inline)) inline void Axpy2(const float* w, const float* const* s, float* d,
                                                 size_t n) {
  const float w0 = w[0], w1 = w[1];
  const float *s0 = s[0], *s1 = s[1];
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Store(d + i, Load(d + i) + w0 * Load(s0 + i) + w1 * Load(s1 + i));
  }
  for (; i < n; ++i) {
    StoreOne(d + i, LoadOne(d + i) + w0 * LoadOne(s0 + i) + w1 * LoadOne(s1 + i));
  }
}

// Four sources per sweep: dst is loaded and stored once for four updates even inside L1.
__attribute__((always_inline)) inline void Axpy4(const float* w, const float* const* s, float* d,
                                                 size_t n) {
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
  const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3];
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    V16 a = w0 * Load(s0 + i) + w1 * Load(s1 + i);
    V16 b = w2 * Load(s2 + i) + w3 * Load(s3 + i);
    Store(d + i, Load(d + i) + (a + b));
  }
  for (; i < n; ++i) {
    float a = w0 * LoadOne(s0 + i) + w1 * LoadOne(s1 + i);
    float b = w2 * LoadOne(s2 + i) + w3 * LoadOne(s3 + i);
    StoreOne(d + i, LoadOne(d + i) + (a + b));
  }
}

// Eight sources per sweep, the server's default group: measured ~5-10% faster than two
// four-source sweeps over the same L1 block (fewer dst loads/stores and loop trips).
__attribute__((always_inline)) inline void Axpy8(const float* w, const float* const* s, float* d,
                                                 size_t n) {
  // Locals, not w[q]/s[q]: the memcpy stores may alias anything, so the compiler would
  // otherwise reload all sixteen values on every iteration.
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
              w7 = w[7];
  const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5],
              *s6 = s[6], *s7 = s[7];
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    V16 a = w0 * Load(s0 + i) + w1 * Load(s1 + i);
    V16 b = w2 * Load(s2 + i) + w3 * Load(s3 + i);
    V16 c = w4 * Load(s4 + i) + w5 * Load(s5 + i);
    V16 e = w6 * Load(s6 + i) + w7 * Load(s7 + i);
    Store(d + i, Load(d + i) + ((a + b) + (c + e)));
  }
  for (; i < n; ++i) {
    float a = w0 * LoadOne(s0 + i) + w1 * LoadOne(s1 + i);
    float b = w2 * LoadOne(s2 + i) + w3 * LoadOne(s3 + i);
    float c = w4 * LoadOne(s4 + i) + w5 * LoadOne(s5 + i);
    float e = w6 * LoadOne(s6 + i) + w7 * LoadOne(s7 + i);
    StoreOne(d + i, LoadOne(d + i) + ((a + b) + (c + e)));
  }
}

}  // namespace

MINDFED_TARGET_CLONES
void Axpy(float w, const float* src, float* dst, size_t n) { Axpy1(w, src, dst, n); }

MINDFED_TARGET_CLONES
void AxpyGroup(const float* w, const float* const* srcs, size_t k, float* dst, size_t n) {
  const float* block_srcs[8];
  for (size_t begin = 0; begin < n; begin += kGroupBlockFloats) {
    const size_t len = std::min(kGroupBlockFloats, n - begin);
    float* d = dst + begin;
    size_t j = 0;
    for (; j + 8 <= k; j += 8) {
      for (size_t q = 0; q < 8; ++q) block_srcs[q] = srcs[j + q] + begin;
      Axpy8(w + j, block_srcs, d, len);
    }
    if (j + 4 <= k) {
      for (size_t q = 0; q < 4; ++q) block_srcs[q] = srcs[j + q] + begin;
      Axpy4(w + j, block_srcs, d, len);
      j += 4;
    }
    if (j + 2 <= k) {
      for (size_t q = 0; q < 2; ++q) block_srcs[q] = srcs[j + q] + begin;
      Axpy2(w + j, block_srcs, d, len);
      j += 2;
    }
    if (j < k) Axpy1(w[j], srcs[j] + begin, d, len);
  }
}

MINDFED_TARGET_CLONES
void ScaleInto(const float* src, float factor, float* dst, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) Store(dst + i, factor * Load(src + i));
  for (; i < n; ++i) StoreOne(dst + i, factor * LoadOne(src + i));
}

}  // namespace mindfed::agg
