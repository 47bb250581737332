// Run-time ISA dispatch for hot loops. The wheel must run on any x86-64 CPU, so nothing is
// compiled with -march=native; instead GCC/Clang emit one clone per ISA level and an ifunc
// resolver picks the best one when the library loads.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
// x86-64-v4 = AVX-512F/BW/DQ/VL, x86-64-v3 = AVX2 + FMA (FMA is the point: "avx2" alone lacks it).
#define MINDFED_TARGET_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define MINDFED_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MINDFED_TARGET_CLONES
#endif
