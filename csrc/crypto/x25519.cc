#include "crypto/x25519.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>

#include "common/errors.h"
#include "crypto/openssl_error.h"

namespace mindfed::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

Pkey PrivateKey(const Key32& private_key) {
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                        private_key.size()));
  if (!key) ThrowOpenSslError("X25519 private key import");
  return key;
}

bool AllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;  // no early exit: the time does not depend on where a non-zero byte is
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

}  // namespace

X25519KeyPair X25519Generate() {
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0) ThrowOpenSslError("X25519 keygen init");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) <= 0) ThrowOpenSslError("X25519 keygen");
  Pkey key(raw);
  X25519KeyPair pair;
  size_t len = pair.private_key.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), pair.private_key.data(), &len) <= 0 ||
      len != pair.private_key.size()) {
    ThrowOpenSslError("X25519 private key export");
  }
  len = pair.public_key.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), pair.public_key.data(), &len) <= 0 ||
      len != pair.public_key.size()) {
    ThrowOpenSslError("X25519 public key export");
  }
  return pair;
}

PublicKey X25519Public(const Key32& private_key) {
  Pkey key = PrivateKey(private_key);
  PublicKey out{};
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), out.data(), &len) <= 0 || len != out.size()) {
    ThrowOpenSslError("X25519 public key export");
  }
  return out;
}

Key32 X25519Shared(const Key32& private_key, const PublicKey& peer_public) {
  Pkey mine = PrivateKey(private_key);
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                        peer_public.size()));
  if (!peer) ThrowOpenSslError("X25519 peer public key import");
  PkeyCtx ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0) ThrowOpenSslError("X25519 derive init");
  if (EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) <= 0) {
    ThrowOpenSslError("X25519 peer public key check");
  }
  Key32 shared;
  size_t len = shared.size();
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &len) <= 0) {
    // OpenSSL 3 refuses an all-zero result itself; name the likely cause.
    ERR_clear_error();
    throw CryptoError("X25519 key agreement failed: the peer public key is a low-order point");
  }
  if (len != shared.size() || AllZero(shared.data(), shared.size())) {
    throw CryptoError("X25519 key agreement failed: the peer public key is a low-order point");
  }
  return shared;
}

}  // namespace mindfed::crypto
