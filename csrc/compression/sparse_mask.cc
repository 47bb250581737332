#include "compression/sparse_mask.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace mindfed::compression {
namespace {

constexpr int32_t kModulus = 2147483647;  // "multiplier" in the MindSpore sources
constexpr int32_t kMultiplier = 48271;    // "modulo" there (the names are swapped upstream)
constexpr double kIncrement = 4294967294.0;

// Java int arithmetic: the exact result reduced to 32 bits, two's complement. The product of
// two int32 fits in int64, so computing there and truncating is exact.
inline int32_t Wrap32(int64_t v) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v)));
}
// C and Java % truncate toward zero: the result has the sign of the dividend.
inline int32_t NextSeed(int32_t seed) {
  return Wrap32(static_cast<int64_t>(seed) * kMultiplier) % kModulus;
}

}  // namespace

size_t KeptCount(size_t d, float rate) {
  if (!(rate > 0.0f && rate <= 1.0f)) {  // also rejects NaN
    throw std::invalid_argument("sparse rate must be in (0, 1], got " + std::to_string(rate));
  }
  if (d > kMaxMaskLength) {
    throw std::invalid_argument("mask length " + std::to_string(d) + " exceeds " +
                                std::to_string(kMaxMaskLength) + " (the client counts in int32)");
  }
  const float product = static_cast<float>(d) * rate;  // float32, as both reference sources
  // Java's (int) saturates; float(d) can round up past d near 2^31, so clamp.
  const double truncated = std::floor(static_cast<double>(product));
  return truncated >= static_cast<double>(d) ? d : static_cast<size_t>(truncated);
}

void SparseMask(size_t d, float rate, int32_t seed, uint8_t* mask) {
  const size_t k = KeptCount(d, rate);
  for (size_t i = 0; i < d; ++i) mask[i] = i < k ? 1 : 0;
  seed = Wrap32(static_cast<int64_t>(Wrap32(static_cast<int64_t>(seed) + kModulus)) * kMultiplier) %
         kModulus;
  for (size_t i = 0; i < d; ++i) {
    const double rand = static_cast<double>(seed) / kIncrement + 0.5;  // in (0, 1)
    seed = NextSeed(seed);
    size_t j = static_cast<size_t>(rand * static_cast<double>(d - i)) + i;
    if (j >= d) j = d - 1;  // unreachable (rand < 1); keeps a wrong derivation memory-safe
    const uint8_t t = mask[i];
    mask[i] = mask[j];
    mask[j] = t;
  }
}

std::vector<int32_t> KeptIndices(size_t d, float rate, int32_t seed) {
  std::vector<uint8_t> mask(d);
  SparseMask(d, rate, seed, mask.data());
  std::vector<int32_t> kept;
  kept.reserve(KeptCount(d, rate));
  for (size_t i = 0; i < d; ++i) {
    if (mask[i]) kept.push_back(static_cast<int32_t>(i));
  }
  return kept;
}

}  // namespace mindfed::compression
