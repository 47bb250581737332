// STREAM-style triad probe (a = b + scalar * c): the memory bandwidth a simple loop reaches on
// this machine right now. Benchmarks report their figures as ratios against it, because
// bandwidth on shared hosts moves by up to 2x within minutes.
#pragma once

#include <cstddef>

namespace mindfed::bench {

// Runs the triad `repeats` times over n floats and returns the fastest run in seconds.
// Use arrays well beyond the last-level cache (e.g. 3 x 64 MiB) to measure DRAM bandwidth;
// STREAM counts 3 * n * sizeof(float) bytes per run. Single-threaded; not thread-safe for
// overlapping a. Throws std::invalid_argument if repeats < 1.
double TriadBestSeconds(float* a, const float* b, const float* c, float scalar, size_t n,
                        int repeats);

}  // namespace mindfed::bench
