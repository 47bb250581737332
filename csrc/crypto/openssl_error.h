// One place that turns the top of OpenSSL's error queue into a CryptoError. The queue holds
// library reasons ("bad decrypt"), never key bytes, so the text is safe to show.
#pragma once

#include <string>

namespace mindfed::crypto {

// Throws CryptoError("<what> failed: <OpenSSL reason>") and clears this thread's error queue.
[[noreturn]] void ThrowOpenSslError(const std::string& what);

}  // namespace mindfed::crypto
