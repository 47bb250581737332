// Weighted sums of float32 vectors: the arithmetic of federated averaging.
//
// Memory-bound loops. Sources and destinations may be at ANY byte address (an update is often
// a view at an odd offset inside a request body), so every load and store goes through
// memcpy-sized vector moves; the pointers are never dereferenced as float directly.
// The functions are thread-safe for disjoint destinations; two calls must not write the same
// dst at once. n is an element count (floats), not bytes. They never throw.
#pragma once

#include <cstddef>

namespace mindfed::agg {

// Floats per cache block in AxpyGroup: 2048 floats = 8 KiB of dst stays in L1 while all
// sources of a group are added to it.
inline constexpr size_t kGroupBlockFloats = 2048;

// dst[i] += w * src[i] for i < n.
void Axpy(float w, const float* src, float* dst, size_t n);

// dst[i] += sum_j w[j] * srcs[j][i] for i < n, j < k, in ONE pass over dst: dst is processed in
// kGroupBlockFloats blocks and every source is added to a block before the next block, so the
// accumulator crosses the memory bus once per group instead of once per source.
// k == 0 leaves dst unchanged. srcs[j] must not overlap dst.
void AxpyGroup(const float* w, const float* const* srcs, size_t k, float* dst, size_t n);

// dst[i] = factor * src[i] for i < n (src == dst is allowed).
void ScaleInto(const float* src, float factor, float* dst, size_t n);

}  // namespace mindfed::agg
