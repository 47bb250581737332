// Finiteness check of float32 vectors: every update and every aggregate is checked for NaN/Inf
// before it is folded or published, so this pass runs once per update and once per model.
//
// Same address rules as weighted_sum.h: src may be at any byte address (loads go through
// memcpy). Thread-safe, never throws.
#pragma once

#include <cstddef>

namespace mindfed::agg {

// Floats checked between early exits: a NaN near the front does not cost a full pass, and the
// inner loop stays branch-free.
inline constexpr size_t kFiniteBlockFloats = 4096;

// True when no src[i] (i < n) is NaN or +-Inf; n == 0 is true.
bool AllFinite(const float* src, size_t n);

}  // namespace mindfed::agg
