// 16-float vectors and unaligned loads/stores shared by the hot loops (aggregation, compression).
//
// V16 is one zmm register in the AVX-512 target clone, two ymm in AVX2, four xmm by default. Loads and
// stores go through memcpy: defined for any alignment (request bodies put float vectors at any byte
// offset) and compiled to vmovups. Everything is always_inline, so a 64-byte vector never crosses a
// call boundary and each ISA clone of a caller gets its own copy (GCC's -Wpsabi note is moot).
#ifndef MINDFED_COMMON_VEC16_H_
#define MINDFED_COMMON_VEC16_H_

#include <cstddef>
#include <cstring>

namespace mindfed::vec {

typedef float V16 __attribute__((vector_size(64)));
constexpr size_t kLanes = 16;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
__attribute__((always_inline)) inline V16 Load(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void Store(float* p, V16 v) { std::memcpy(p, &v, sizeof v); }
__attribute__((always_inline)) inline V16 Splat(float f) { return V16{} + f; }
#pragma GCC diagnostic pop

inline float LoadOne(const float* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreOne(float* p, float v) { std::memcpy(p, &v, sizeof v); }

}  // namespace mindfed::vec

#endif  // MINDFED_COMMON_VEC16_H_
