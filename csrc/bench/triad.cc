#include "bench/triad.h"

#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/target_clones.h"

namespace mindfed::bench {
namespace {

// Same ISA dispatch as the aggregation kernels, so the ratio compares loops, not compilers.
MINDFED_TARGET_CLONES
__attribute__((noinline)) void Triad(float* __restrict a, const float* __restrict b,
                                     const float* __restrict c, float scalar, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
}

}  // namespace

double TriadBestSeconds(float* a, const float* b, const float* c, float scalar, size_t n,
                        int repeats) {
  if (repeats < 1) throw std::invalid_argument("repeats must be >= 1, got " + std::to_string(repeats));
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    Triad(a, b, c, scalar, n);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (took.count() < best) best = took.count();
  }
  return best;
}

}  // namespace mindfed::bench
