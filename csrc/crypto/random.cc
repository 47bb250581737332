#include "crypto/random.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "common/errors.h"

namespace mindfed::crypto {

std::vector<uint8_t> RandomBytes(size_t n) {
  if (n > static_cast<size_t>(INT_MAX)) {
    throw std::invalid_argument("random_bytes: " + std::to_string(n) + " bytes requested, at most " +
                                std::to_string(INT_MAX) + " per call");
  }
  std::vector<uint8_t> out(n);
  if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
    throw CryptoError(std::string("RAND_bytes failed: ") + reason);
  }
  return out;
}

}  // namespace mindfed::crypto
