#include "agg/finite.h"

#include <cstdint>
#include <cstring>

#include "common/target_clones.h"
#include "common/vec16.h"

// 64-byte vectors only live inside always_inline code (see common/vec16.h): GCC's ABI note is moot.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mindfed::agg {
namespace {

using vec::kLanes;
typedef uint32_t U16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));

// A float is NaN or +-Inf exactly when its 8 exponent bits are all ones.
constexpr uint32_t kExponent = 0x7f800000u;

__attribute__((always_inline)) inline U16 Bits(const float* p) {
  U16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline bool FiniteOne(const float* p) {
  uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return (bits & kExponent) != kExponent;
}

}  // namespace

MINDFED_TARGET_CLONES
bool AllFinite(const float* src, size_t n) {
  size_t i = 0;
  while (i + kLanes <= n) {
    const size_t end = (n - i >= kFiniteBlockFloats) ? i + kFiniteBlockFloats : n - (n - i) % kLanes;
    I16 bad{};
    for (; i < end; i += kLanes) bad |= ((Bits(src + i) & kExponent) == kExponent);
    for (size_t l = 0; l < kLanes; ++l) {
      if (bad[l]) return false;
    }
  }
  for (; i < n; ++i) {
    if (!FiniteOne(src + i)) return false;
  }
  return true;
}

}  // namespace mindfed::agg

#pragma GCC diagnostic pop
