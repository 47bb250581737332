// ctest unit test for agg/weighted_sum (built with -DMINDFED_BUILD_TESTS=ON): every kernel
// against a double-precision reference, at sizes around the vector width and block size, with
// sources and destination at odd byte offsets.
#include "agg/weighted_sum.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

int failures = 0;

void Check(bool ok, const char* what, size_t n, size_t k) {
  if (!ok) {
    std::fprintf(stderr, "FAIL %s n=%zu k=%zu\n", what, n, k);
    ++failures;
  }
}

// n floats stored `offset` bytes into a byte buffer, so the float pointer may be unaligned.
struct Unaligned {
  Unaligned(const std::vector<float>& values, size_t offset)
      : bytes(values.size() * sizeof(float) + offset) {
    std::memcpy(bytes.data() + offset, values.data(), values.size() * sizeof(float));
    ptr = reinterpret_cast<float*>(bytes.data() + offset);
  }
  float Get(size_t i) const {
    float v;
    std::memcpy(&v, reinterpret_cast<const char*>(ptr) + i * sizeof(float), sizeof v);
    return v;
  }
  std::vector<char> bytes;
  float* ptr;
};

bool Close(double got, double want) { return std::fabs(got - want) <= 1e-5 * std::fabs(want) + 1e-6; }

void TestGroup(size_t n, size_t k, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(0.5f, 1.5f);
  std::vector<float> acc(n), w(k);
  std::vector<std::vector<float>> src(k, std::vector<float>(n));
  for (auto& v : acc) v = dist(rng);
  for (auto& v : w) v = dist(rng);
  for (auto& s : src)
    for (auto& v : s) v = dist(rng);
  std::vector<double> want(acc.begin(), acc.end());
  for (size_t j = 0; j < k; ++j)
    for (size_t i = 0; i < n; ++i) want[i] += double(w[j]) * src[j][i];

  Unaligned dst(acc, 3);
  std::vector<Unaligned> held;
  std::vector<const float*> ptrs;
  for (size_t j = 0; j < k; ++j) held.emplace_back(src[j], 1 + j % 3);
  for (auto& h : held) ptrs.push_back(h.ptr);
  mindfed::agg::AxpyGroup(w.data(), ptrs.data(), k, dst.ptr, n);
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok = ok && Close(dst.Get(i), want[i]);
  Check(ok, "AxpyGroup", n, k);

  if (k >= 1) {
    Unaligned one(acc, 1);
    mindfed::agg::Axpy(w[0], held[0].ptr, one.ptr, n);
    ok = true;
    for (size_t i = 0; i < n; ++i) ok = ok && Close(one.Get(i), acc[i] + double(w[0]) * src[0][i]);
    Check(ok, "Axpy", n, k);
  }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  for (size_t n : {0, 1, 15, 16, 17, 2047, 2048, 2049, 3 * 2048 + 5}) {
    for (size_t k = 0; k <= 17; ++k) TestGroup(n, k, rng);
    std::vector<float> src(n, 2.0f), out(n, 0.0f);
    mindfed::agg::ScaleInto(src.data(), 0.25f, out.data(), n);
    bool ok = true;
    for (float v : out) ok = ok && v == 0.5f;
    Check(ok, "ScaleInto", n, 0);
  }
  if (failures == 0) std::puts("weighted_sum_test: all passed");
  return failures == 0 ? 0 : 1;
}
