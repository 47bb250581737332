#include "compression/decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/errors.h"
#include "common/target_clones.h"

namespace mindfed::compression {
namespace {

inline float LoadOne(const float* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreOne(float* p, float v) { std::memcpy(p, &v, sizeof v); }

}  // namespace

void CheckKept(const SparseTensor& t, size_t n) {
  int64_t previous = t.offset - 1;
  const int64_t end = t.offset + static_cast<int64_t>(n);
  for (size_t j = 0; j < t.k; ++j) {
    const int64_t p = t.kept[j];
    if (p <= previous || p >= end) {
      throw std::invalid_argument("kept[" + std::to_string(j) + "] = " + std::to_string(p) +
                                  " is not ascending inside [" + std::to_string(t.offset) + ", " +
                                  std::to_string(end) + ")");
    }
    previous = p;
  }
}

void CheckRange(const SparseTensor& t) {
  if (t.k == 0) return;
  const float mn = t.range.min, mx = t.range.max;
  if (!std::isfinite(mn) || !std::isfinite(mx) || !(mn <= mx) || !std::isfinite(mx - mn)) {
    throw ProtocolError("compressed tensor has min_val " + std::to_string(mn) + " and max_val " +
                        std::to_string(mx) + "; need finite min <= max");
  }
}

MINDFED_TARGET_CLONES
void DecodeAccumulate(const SparseTensor& t, const float* latest, float data_size, float* acc,
                      size_t n) {
  const float scale = QuantScale(t.range.min, t.range.max);
  const float mn = t.range.min;
  float block[kDecodeBlockFloats];
  float decoded[kDecodeBlockFloats];
  size_t j = 0;
  for (size_t begin = 0; begin < n; begin += kDecodeBlockFloats) {
    const size_t len = std::min(kDecodeBlockFloats, n - begin);
    const float* w = latest + begin;
    float* a = acc + begin;
    // 0.0f + ...: MindSpore starts unkept coordinates at 0.0f; the add turns -0 into +0.
    for (size_t i = 0; i < len; ++i) block[i] = 0.0f + data_size * LoadOne(w + i);
    const int64_t block_end = t.offset + static_cast<int64_t>(begin + len);
    const int64_t base = t.offset + static_cast<int64_t>(begin);
    // This block's kept values: at most len of them (kept is strictly ascending). Dequantise
    // them in one vectorisable pass, then scatter with nothing but an add per value.
    // A forward scan, not a binary search: kept streams through the cache once either way.
    size_t j_end = j;
    while (j_end < t.k && t.kept[j_end] < block_end) ++j_end;
    const size_t m = j_end - j;
    const int8_t* codes = t.codes + j;
    for (size_t q = 0; q < m; ++q) {
      decoded[q] = (static_cast<float>(codes[q]) + kQuantOffset) * scale + mn;
    }
    const int32_t* kept = t.kept + j;
    for (size_t q = 0; q < m; ++q) {
      float& slot = block[kept[q] - base];
      slot = decoded[q] + slot;
    }
    j = j_end;
    for (size_t i = 0; i < len; ++i) StoreOne(a + i, LoadOne(a + i) + block[i]);
  }
}

}  // namespace mindfed::compression
