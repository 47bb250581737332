// ctest unit test for agg/finite (built with -DMINDFED_BUILD_TESTS=ON): a NaN, +Inf or -Inf at
// every position of sizes around the vector width and block size, at odd byte offsets.
#include "agg/finite.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

int main() {
  int failures = 0;
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  const size_t sizes[] = {0, 1, 15, 16, 17, 31, 4095, 4096, 4097, 8192 + 33};
  for (size_t n : sizes) {
    for (size_t offset : {0, 1, 3}) {
      std::vector<char> bytes(n * sizeof(float) + offset);
      auto* p = reinterpret_cast<float*>(bytes.data() + offset);
      for (size_t i = 0; i < n; ++i) {
        float v = 3.4e38f * ((i % 2) ? -1.0f : 1.0f);  // large but finite
        std::memcpy(bytes.data() + offset + i * sizeof(float), &v, sizeof v);
      }
      if (!mindfed::agg::AllFinite(p, n)) {
        std::fprintf(stderr, "FAIL finite n=%zu offset=%zu\n", n, offset);
        ++failures;
      }
      for (size_t at = 0; at < n; at += (n > 64 ? 61 : 1)) {
        for (float b : bad) {
          float keep;
          std::memcpy(&keep, bytes.data() + offset + at * sizeof(float), sizeof keep);
          std::memcpy(bytes.data() + offset + at * sizeof(float), &b, sizeof b);
          if (mindfed::agg::AllFinite(p, n)) {
            std::fprintf(stderr, "FAIL missed n=%zu offset=%zu at=%zu\n", n, offset, at);
            ++failures;
          }
          std::memcpy(bytes.data() + offset + at * sizeof(float), &keep, sizeof keep);
        }
      }
    }
  }
  if (failures == 0) std::printf("finite_test: ok\n");
  return failures == 0 ? 0 : 1;
}
