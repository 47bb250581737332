#include "agg/finite.h"

#include <cstdint>
#include <cstring>

#include "common/target_clones.h"

namespace mindfed::agg {
namespace {

// A float is NaN or +-Inf exactly when its 8 exponent bits are all ones.
constexpr uint32_t kExponent = 0x7f800000u;

}  // namespace

// A plain loop over the bits that GCC vectorizes for each clone: OR-ing per-lane compares of 64-byte generic vectors
// compiled to code six times slower (19 ms vs 3.3 ms for 10M floats), which put 20 ms of every 40 MB updateModel on
// the server's event loop.
MINDFED_TARGET_CLONES
bool AllFinite(const float* src, size_t n) {
  size_t i = 0;
  while (i < n) {
    const size_t end = n - i > kFiniteBlockFloats ? i + kFiniteBlockFloats : n;
    uint32_t bad = 0;
    for (; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, src + i, sizeof bits);  // unaligned and read-only input is allowed
      bad |= static_cast<uint32_t>((bits & kExponent) == kExponent);
    }
    if (bad != 0) return false;  // stop within a block of the first bad value
  }
  return true;
}

}  // namespace mindfed::agg
