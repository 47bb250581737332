// Server-side decode of one DIFF_SPARSE_QUANT tensor straight into the aggregation accumulator
// (spec §8.1 "Server decode" followed by §4.4 accumulate), without a dense per-client copy:
//
//   for every coordinate i of the tensor:
//     u_i    = x'_k + data_size * latest_i   if i is the k-th kept coordinate of this tensor
//            = 0.0f + data_size * latest_i   otherwise
//     acc_i += u_i
//
// with x'_k = ((float)codes[k] + 128) * scale + min (see quantize.h). The float operations
// and their order are exactly MindSpore's (decode to w·n, then agg += w·n), so the sums are
// bit-identical to decoding densely first. Work is done in L1-sized blocks: a block of
// data_size * latest, the kept values scattered into it, then one pass adding it to acc.
//
// Thread-safe for distinct acc. Float arrays may sit at any byte address.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compression/quantize.h"

namespace mindfed::compression {

inline constexpr size_t kDecodeBlockFloats = 2048;  // 8 KiB scratch: stays in L1

struct SparseTensor {
  const int8_t* codes;    // k quantised kept values, in mask order
  const int32_t* kept;    // k GLOBAL mask positions (ascending), this tensor's share of the mask
  size_t k;
  int64_t offset;         // global position of this tensor's first coordinate
  MinMax range;           // the client's min/max for this tensor
};

// Checks that kept[] is strictly ascending and inside [offset, offset + n). O(k).
// Throws std::invalid_argument otherwise (a caller bug: kept comes from our own mask).
void CheckKept(const SparseTensor& t, size_t n);

// Checks the client's min/max: both finite, min <= max and max - min finite. Skipped when
// k == 0 (the Java client sends FLT_MAX/-FLT_MAX for a tensor with no kept values).
// Throws mindfed::ProtocolError otherwise (bad device data).
void CheckRange(const SparseTensor& t);

// acc[0..n) += decoded update, as above. Call CheckKept and CheckRange first; never throws.
void DecodeAccumulate(const SparseTensor& t, const float* latest, float data_size, float* acc,
                      size_t n);

}  // namespace mindfed::compression
