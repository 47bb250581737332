// The exception types that C++ code throws on purpose. csrc/bindings/errors.cc maps them onto
// mindfed.errors in one place; std::invalid_argument (a caller bug) arrives as ValueError.
// Messages name the bad value, never secret bytes.
#pragma once

#include <stdexcept>
#include <string>

namespace mindfed {

// Base of every mindfed C++ error; arrives in Python as mindfed.errors.MindFedError.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bytes from a peer or device do not follow the protocol (bad frame, malformed message).
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// A cryptographic operation failed (libcrypto error, too few shares, bad key).
class CryptoError : public Error {
 public:
  using Error::Error;
};

// A node-to-node connection failed or timed out; arrives as mindfed.errors.NetworkError.
class NetError : public Error {
 public:
  using Error::Error;
};

}  // namespace mindfed
