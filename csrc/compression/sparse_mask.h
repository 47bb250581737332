// The seeded sparse mask of MindSpore's DIFF_SPARSE_QUANT upload compression (spec §8.1),
// bit-exact with the Java device client (EncodeExecutor.constructMaskArray) and the C++ server
// (DecodeExecutor::ConstructMaskArray):
//
//   K = (int)((float)D * rate)                      (float32 product, truncated)
//   mask = K ones then D - K zeros
//   seed = ((seed + 2147483647) * 48271) % 2147483647     int32 wrap-around, truncating %
//   for i in 0..D-1: rand = seed / 4294967294.0 + 0.5      (double)
//                    seed = (seed * 48271) % 2147483647
//                    j = (int)(rand * (D - i)) + i;  swap(mask[i], mask[j])
//
// The seed is the iteration number. The mask is the same for every client of an iteration, so
// callers compute it once per (D, rate, iteration) and reuse it. O(D) time, serial (the
// generator is a dependency chain), D bytes of scratch. Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mindfed::compression {

// Largest D the generator supports: the Java client counts coordinates in an int.
inline constexpr size_t kMaxMaskLength = 2147483647;

// K = (int)((float)d * rate), clamped to d. Throws std::invalid_argument unless
// 0 < rate <= 1 and d <= kMaxMaskLength.
size_t KeptCount(size_t d, float rate);

// Writes the 0/1 mask of length d into mask[0..d). Same argument checks as KeptCount.
void SparseMask(size_t d, float rate, int32_t seed, uint8_t* mask);

// Positions i with mask[i] == 1, ascending (K of them): the order in which the client sends
// the kept values. Same argument checks as KeptCount.
std::vector<int32_t> KeptIndices(size_t d, float rate, int32_t seed);

}  // namespace mindfed::compression
