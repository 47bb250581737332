// Cryptographically secure random bytes from the system libcrypto (OpenSSL RAND_bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mindfed::crypto {

// Returns n bytes from OpenSSL's CSPRNG. Thread-safe (OpenSSL 3 locks its DRBG).
// Throws CryptoError if the generator fails (e.g. not seeded) and std::invalid_argument if
// n exceeds INT_MAX, the most RAND_bytes takes in one call.
std::vector<uint8_t> RandomBytes(size_t n);

}  // namespace mindfed::crypto
