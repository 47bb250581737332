#include "compression/quantize.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/target_clones.h"
#include "common/vec16.h"

namespace mindfed::compression {
namespace {

typedef uint32_t U16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
typedef int8_t B16 __attribute__((vector_size(16)));
using vec::kLanes;
using vec::Load;
using vec::LoadOne;
using vec::Splat;
using vec::StoreOne;
using vec::V16;

#pragma GCC diagnostic ignored "-Wpsabi"
inline uint32_t Bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Java's Math.round(float) = floor(v + 1/2) computed exactly, then the (byte) cast keeps the
// low 8 bits. Float-only so the loop vectorises: with r = floor(v), the float subtraction
// v - r is exact whenever its true value lies in [0.25, 0.5) (then |v| >= 0.25, so v and r sit
// on a grid of 2^-25 or coarser), and rounding is monotone with 0.5 representable; hence
// (v - r >= 0.5f) decides the tie-up exactly. |v| stays far below 2^23 for codes.
__attribute__((always_inline)) inline int8_t JavaRoundToByte(float v) {
  const float r = std::floor(v);
  const int32_t q = static_cast<int32_t>(r) + static_cast<int32_t>(v - r >= 0.5f);
  return static_cast<int8_t>(static_cast<uint8_t>(q & 0xff));
}

// The Java loop keeps the FIRST value equal to the final min (max); only the sign of a zero
// can tell equal values apart, so for a zero result find the first zero's sign.
float FirstZeroWithSign(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float v = LoadOne(x + i);
    if (v == 0.0f) return v;
  }
  return 0.0f;
}

}  // namespace

float QuantScale(float min, float max) { return (max - min) / kQuantLevels + kQuantEpsilon; }

MINDFED_TARGET_CLONES
MinMax FindMinMax(const float* x, size_t n) {
  if (n == 0) return {FLT_MAX, -FLT_MAX};
  // 16 lanes of running min/max and a non-finite flag (exponent all ones = Inf or NaN), then
  // a lane reduction. The order of updates only matters for the sign of zero (fixed below).
  V16 vmn = Splat(FLT_MAX), vmx = Splat(-FLT_MAX);
  U16 bad = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const V16 v = Load(x + i);
    U16 bits;
    std::memcpy(&bits, &v, sizeof bits);
    bad |= (bits & 0x7f800000u) == 0x7f800000u;
    vmn = v < vmn ? v : vmn;
    vmx = v > vmx ? v : vmx;
  }
  float mn = FLT_MAX, mx = -FLT_MAX;
  uint32_t nonfinite = 0;
  for (size_t l = 0; l < kLanes; ++l) {
    mn = vmn[l] < mn ? vmn[l] : mn;
    mx = vmx[l] > mx ? vmx[l] : mx;
    nonfinite |= bad[l];
  }
  for (; i < n; ++i) {
    const float v = LoadOne(x + i);
    nonfinite |= static_cast<uint32_t>((Bits(v) & 0x7f800000u) == 0x7f800000u);
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  if (nonfinite) {
    for (size_t i = 0; i < n; ++i) {
      const float v = LoadOne(x + i);
      if (!std::isfinite(v)) {
        throw std::invalid_argument("value " + std::to_string(v) + " at index " +
                                    std::to_string(i) + " is not finite");
      }
    }
  }
  if (mn == 0.0f) mn = FirstZeroWithSign(x, n);
  if (mx == 0.0f) mx = FirstZeroWithSign(x, n);
  if (!std::isfinite(mx - mn)) {
    throw std::invalid_argument("range [" + std::to_string(mn) + ", " + std::to_string(mx) +
                                "] overflows float32");
  }
  return {mn, mx};
}

MINDFED_TARGET_CLONES
void QuantizeWith(const float* x, size_t n, MinMax range, int8_t* codes) {
  const float scale = QuantScale(range.min, range.max);
  const float mn = range.min;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const V16 v = (Load(x + i) - mn) / scale - kQuantOffset;
    // JavaRoundToByte on 16 lanes: floor as truncate-then-correct (|v| << 2^31); vector
    // comparisons yield -1 for true.
    const I16 t = __builtin_convertvector(v, I16);
    const I16 r = t + (__builtin_convertvector(t, V16) > v);
    const I16 q = r - ((v - __builtin_convertvector(r, V16)) >= 0.5f);
    const B16 bytes = __builtin_convertvector(q, B16);  // keeps the low 8 bits, like (byte)
    std::memcpy(codes + i, &bytes, sizeof bytes);
  }
  for (; i < n; ++i) codes[i] = JavaRoundToByte((LoadOne(x + i) - mn) / scale - kQuantOffset);
}

MinMax Quantize(const float* x, size_t n, int8_t* codes) {
  const MinMax range = FindMinMax(x, n);
  QuantizeWith(x, n, range, codes);
  return range;
}

MINDFED_TARGET_CLONES
void Dequantize(const int8_t* codes, size_t n, MinMax range, float* out) {
  const float scale = QuantScale(range.min, range.max);
  const float mn = range.min;
  for (size_t i = 0; i < n; ++i) {
    StoreOne(out + i, (static_cast<float>(codes[i]) + kQuantOffset) * scale + mn);
  }
}

}  // namespace mindfed::compression
