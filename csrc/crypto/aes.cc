#include "crypto/aes.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "common/errors.h"
#include "crypto/openssl_error.h"

namespace mindfed::crypto {
namespace {

constexpr size_t kMaxUpdate = size_t{1} << 30;  // EVP lengths are int

// Fetched once: an implicit fetch inside every EVP_EncryptInit_ex2 would cost a lookup and
// a lock each time a thread starts a keystream.
const EVP_CIPHER* Cipher(const char* name) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (c == nullptr) ThrowOpenSslError(std::string("fetching ") + name);
  return c;  // kept for the life of the process
}
const EVP_CIPHER* Ctr() {
  static const EVP_CIPHER* c = Cipher("AES-256-CTR");
  return c;
}
const EVP_CIPHER* Cbc() {
  static const EVP_CIPHER* c = Cipher("AES-256-CBC");
  return c;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

Ctx NewCtx() {
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) ThrowOpenSslError("EVP_CIPHER_CTX_new");
  return ctx;
}

// Runs a whole CBC operation; `decrypt` selects the direction.
std::vector<uint8_t> Cbc(const uint8_t key[32], const uint8_t iv[16], const uint8_t* in, size_t n,
                         bool decrypt) {
  if (n > static_cast<size_t>(INT_MAX) - 32) {
    throw std::invalid_argument("aes256_cbc: " + std::to_string(n) + " bytes is too long");
  }
  Ctx ctx = NewCtx();
  if (EVP_CipherInit_ex2(ctx.get(), Cbc(), key, iv, decrypt ? 0 : 1, nullptr) != 1) {
    ThrowOpenSslError("AES-256-CBC init");
  }
  std::vector<uint8_t> out(n + 16);
  int len = 0;
  int tail = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &len, in, static_cast<int>(n)) != 1) {
    ThrowOpenSslError("AES-256-CBC");
  }
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + len, &tail) != 1) {
    if (!decrypt) ThrowOpenSslError("AES-256-CBC final block");
    OPENSSL_cleanse(out.data(), out.size());
    ERR_clear_error();
    throw CryptoError("AES-256-CBC decryption failed: bad padding (wrong key or IV, or damaged "
                      "ciphertext)");
  }
  out.resize(static_cast<size_t>(len + tail));
  return out;
}

}  // namespace

void AddToCounter(const uint8_t iv[16], uint64_t blocks, uint8_t out[16]) {
  unsigned carry = 0;
  for (int i = 15; i >= 0; --i) {
    const unsigned add = (i >= 8) ? static_cast<unsigned>((blocks >> (8 * (15 - i))) & 0xff) : 0;
    const unsigned sum = iv[i] + add + carry;
    out[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
  }
}

AesCtrStream::AesCtrStream() : ctx_(NewCtx().release()) {}
AesCtrStream::~AesCtrStream() { EVP_CIPHER_CTX_free(ctx_); }
AesCtrStream::AesCtrStream(AesCtrStream&& other) noexcept : ctx_(other.ctx_) {
  other.ctx_ = nullptr;
}
AesCtrStream& AesCtrStream::operator=(AesCtrStream&& other) noexcept {
  std::swap(ctx_, other.ctx_);
  return *this;
}

void AesCtrStream::Start(const uint8_t key[32], const uint8_t iv[16], uint64_t block_offset) {
  uint8_t counter[16];
  AddToCounter(iv, block_offset, counter);
  if (EVP_EncryptInit_ex2(ctx_, Ctr(), key, counter, nullptr) != 1) {
    ThrowOpenSslError("AES-256-CTR init");
  }
}

void AesCtrStream::Apply(const uint8_t* in, uint8_t* out, size_t n) {
  while (n > 0) {
    const size_t step = std::min(n, kMaxUpdate);
    int len = 0;
    if (EVP_EncryptUpdate(ctx_, out, &len, in, static_cast<int>(step)) != 1 ||
        static_cast<size_t>(len) != step) {
      ThrowOpenSslError("AES-256-CTR");
    }
    in += step;
    out += step;
    n -= step;
  }
}

std::vector<uint8_t> Aes256Ctr(const uint8_t key[32], const uint8_t iv[16], const uint8_t* data,
                               size_t n) {
  std::vector<uint8_t> out(n);
  AesCtrStream stream;
  stream.Start(key, iv, 0);
  stream.Apply(data, out.data(), n);
  return out;
}

std::vector<uint8_t> Aes256CbcEncrypt(const uint8_t key[32], const uint8_t iv[16],
                                      const uint8_t* plaintext, size_t n) {
  return Cbc(key, iv, plaintext, n, false);
}

std::vector<uint8_t> Aes256CbcDecrypt(const uint8_t key[32], const uint8_t iv[16],
                                      const uint8_t* ciphertext, size_t n) {
  if (n == 0 || n % 16 != 0) {
    throw CryptoError("AES-256-CBC ciphertext has " + std::to_string(n) +
                      " bytes, needs a positive multiple of 16");
  }
  return Cbc(key, iv, ciphertext, n, true);
}

}  // namespace mindfed::crypto
