// AES-256 in the two modes MindSpore's PW_ENCRYPT uses, through libcrypto's EVP interface:
//   CTR  the mask PRG (masking.cc, Masking.java): the 16-byte IV is the initial counter block
//        and the whole 128 bits count up big-endian, wrapping at 2^128 (OpenSSL and Java's
//        AES/CTR/NoPadding agree). AesCtrStream can start at any block offset, so threads can
//        expand disjoint parts of one keystream.
//   CBC  the envelope of secret shares (AESEncrypt.java "AES/CBC/PKCS5PADDING"): PKCS#7
//        padding; the IV is the caller's (MindSpore prepends it to the ciphertext; we don't).
//
// Keys are 32 bytes and IVs 16 (std::invalid_argument otherwise, checked by the callers that
// take raw pointers: the binding). libcrypto failures and bad CBC padding throw CryptoError
// without key bytes in the message. Functions are thread-safe; an AesCtrStream is not (one
// per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace mindfed::crypto {

// counter = iv + blocks (mod 2^128), both big-endian 128-bit integers.
void AddToCounter(const uint8_t iv[16], uint64_t blocks, uint8_t out[16]);

// One AES-256-CTR keystream position. Move-only: it owns an EVP_CIPHER_CTX whose key
// schedule OpenSSL wipes on free.
class AesCtrStream {
 public:
  AesCtrStream();  // CryptoError if libcrypto cannot allocate a context
  ~AesCtrStream();
  AesCtrStream(AesCtrStream&& other) noexcept;
  AesCtrStream& operator=(AesCtrStream&& other) noexcept;
  AesCtrStream(const AesCtrStream&) = delete;  // an EVP context has one owner
  AesCtrStream& operator=(const AesCtrStream&) = delete;

  // Positions the stream at byte 16·block_offset of the keystream of (key, iv).
  void Start(const uint8_t key[32], const uint8_t iv[16], uint64_t block_offset);
  // out = in XOR the next n keystream bytes (in == out allowed); continues where the last
  // call stopped, also mid-block.
  void Apply(const uint8_t* in, uint8_t* out, size_t n);

 private:
  EVP_CIPHER_CTX* ctx_;
};

// data XOR keystream(key, iv) from block 0: encryption and decryption alike.
std::vector<uint8_t> Aes256Ctr(const uint8_t key[32], const uint8_t iv[16], const uint8_t* data,
                               size_t n);

// PKCS#7-padded CBC encryption: returns the ciphertext only (a multiple of 16 bytes, at least
// 16). CryptoError if libcrypto fails.
std::vector<uint8_t> Aes256CbcEncrypt(const uint8_t key[32], const uint8_t iv[16],
                                      const uint8_t* plaintext, size_t n);

// Inverse of Aes256CbcEncrypt. CryptoError when n is not a positive multiple of 16 or the
// padding is malformed (wrong key, wrong IV or damaged ciphertext).
std::vector<uint8_t> Aes256CbcDecrypt(const uint8_t key[32], const uint8_t iv[16],
                                      const uint8_t* ciphertext, size_t n);

}  // namespace mindfed::crypto
