#include "agg/weighted_sum.h"

#include <algorithm>
#include <cstring>

#include "common/target_clones.h"

namespace mindfed::agg {
namespace {

// 16 floats: one zmm register in the AVX-512 clone, two ymm in AVX2, four xmm by default.
typedef float V16 __attribute__((vector_size(64)));
constexpr size_t kLanes = 16;

// memcpy loads/stores: defined for any alignment and compiled to vmovups.
inline V16 Load(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void Store(float* p, V16 v) { std::memcpy(p, &v, sizeof v); }
inline float LoadOne(const float* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreOne(float* p, float v) { std::memcpy(p, &v, sizeof v); }

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

}  // namespace

MINDFED_TARGET_CLONES
void Axpy(float w, const float* src, float* dst, size_t n) { Axpy1(w, src, dst, n); }

MINDFED_TARGET_CLONES
void AxpyGroup(const float* w, const float* const* srcs, size_t k, float* dst, size_t n) {
  const float* block_srcs[4];
  for (size_t begin = 0; begin < n; begin += kGroupBlockFloats) {
    const size_t len = std::min(kGroupBlockFloats, n - begin);
    float* d = dst + begin;
    size_t j = 0;
    for (; j + 4 <= k; j += 4) {
      for (size_t q = 0; q < 4; ++q) block_srcs[q] = srcs[j + q] + begin;
      Axpy4(w + j, block_srcs, d, len);
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
