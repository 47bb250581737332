// 8-bit min/max quantisation of MindSpore's compression (spec §8.1 upload, §8.2 QUANT download),
// bit-exact with the Java device client (EncodeExecutor.enDiffSparseQuant) and the server
// decoder (DecodeExecutor::DeQuantSparseDiff). All arithmetic is float32, one rounding per
// operation, no FMA contraction (the sources are built with -ffp-contract=off):
//
//   min, max = smallest / largest value (first occurrence wins, as Java's strict < and >)
//   scale    = (max - min) / 255.0f + 1e-10f
//   q        = (int8) Math.round((x - min) / scale - 128.0f)   Java: floor(v + 1/2), exact
//   x'       = ((float)q + 128.0f) * scale + min
//
// For x in [min, max], |x' - x| <= scale / 2 up to float rounding. min == max gives
// scale = 1e-10f, every q = -128 and x' = min exactly.
//
// Note: MindSpore's server QUANT download rounds with C round() (ties away from zero), which
// differs from Math.round only when (x - min)/scale - 128 is exactly k + 0.5 with k < 0; the
// decoder does not care, and we use Math.round in both directions.
//
// Functions are thread-safe for disjoint outputs. Float arrays may sit at any byte address.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mindfed::compression {

inline constexpr float kQuantLevels = 255.0f;   // (1 << 8) - 1
inline constexpr float kQuantOffset = 128.0f;   // 1 << 7
inline constexpr float kQuantEpsilon = 1e-10f;

struct MinMax {
  float min;
  float max;
};

// scale = (max - min) / 255.0f + 1e-10f, in float.
float QuantScale(float min, float max);

// min/max of x[0..n) as the Java client computes them. n == 0 gives {FLT_MAX, -FLT_MAX}, the
// values the Java client sends for an empty tensor. Throws std::invalid_argument if any value
// is NaN or infinite, or if max - min overflows float32 (the scale would be infinite).
MinMax FindMinMax(const float* x, size_t n);

// codes[i] = q(x[i]) for i < n with the given min/max (normally FindMinMax of x).
// Never throws.
void QuantizeWith(const float* x, size_t n, MinMax range, int8_t* codes);

// FindMinMax then QuantizeWith: the whole encode of one tensor (or of its kept values).
MinMax Quantize(const float* x, size_t n, int8_t* codes);

// out[i] = x'(codes[i]) for i < n. Never throws.
void Dequantize(const int8_t* codes, size_t n, MinMax range, float* out);

}  // namespace mindfed::compression
