#include "crypto/openssl_error.h"

#include <openssl/err.h>

#include "common/errors.h"

namespace mindfed::crypto {

void ThrowOpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::string message = what + " failed";
  if (code != 0) {
    char reason[256];
    ERR_error_string_n(code, reason, sizeof reason);
    message += std::string(": ") + reason;
  }
  throw CryptoError(message);
}

}  // namespace mindfed::crypto
