#include "net/tls_context.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <utility>

#include "common/errors.h"

namespace mindfed::net {
namespace {

// OpenSSL's TLS 1.3 suites, AES-128-GCM first: the fastest with AES-NI, all AEAD.
constexpr const char* kTls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// Secrets are wiped even when loading throws half-way.
struct Wipe {
  std::string* secret;
  ~Wipe() {
    if (!secret->empty()) OPENSSL_cleanse(secret->data(), secret->size());
    secret->clear();
  }
};

std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "";
  char reason[256];
  ERR_error_string_n(code, reason, sizeof reason);
  return std::string(" (") + reason + ")";
}

[[noreturn]] void Fail(const std::string& what) { throw NetError("node TLS: " + what + OpenSslReason()); }

struct Pkcs12Parts {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* chain = nullptr;
  ~Pkcs12Parts() {
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
  }
};

// MindSpore's texts (spec §10.1): "PKCS12_parse failed" for a wrong password.
void LoadPkcs12(SSL_CTX* ctx, const std::string& path, const std::string& password, const char* role) {
  if (path.empty()) Fail(std::string(role) + " certificate path is empty");
  if (password.empty()) throw NetError(std::string("node TLS: ") + path + ": The " + role + " password's value is empty.");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "rb"), &BIO_free);
  if (!bio) Fail("cannot open " + std::string(role) + " certificate " + path);
  std::unique_ptr<PKCS12, decltype(&PKCS12_free)> p12(d2i_PKCS12_bio(bio.get(), nullptr), &PKCS12_free);
  if (!p12) Fail(path + " is not a PKCS#12 file");
  Pkcs12Parts parts;
  if (PKCS12_parse(p12.get(), password.c_str(), &parts.key, &parts.cert, &parts.chain) != 1) {
    ERR_clear_error();  // the reason ("mac verify failure") says no more than MindSpore's text
    throw NetError("node TLS: " + path + ": PKCS12_parse failed.");
  }
  if (parts.key == nullptr || parts.cert == nullptr) Fail(path + " holds no certificate and key");
  if (X509_cmp_current_time(X509_get0_notBefore(parts.cert)) >= 0 ||
      X509_cmp_current_time(X509_get0_notAfter(parts.cert)) <= 0) {
    Fail("the certificate in " + path + " is not valid now");
  }
  if (SSL_CTX_use_certificate(ctx, parts.cert) != 1 || SSL_CTX_use_PrivateKey(ctx, parts.key) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    Fail("cannot use the certificate and key of " + path);
  }
  for (int i = 0; parts.chain != nullptr && i < sk_X509_num(parts.chain); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(parts.chain, i)) != 1) Fail("bad chain in " + path);
  }
}

void LoadTrust(SSL_CTX* ctx, const TlsOptions& o) {
  if (o.ca_cert_path.empty()) Fail("ca_cert_path is empty");
  if (SSL_CTX_load_verify_locations(ctx, o.ca_cert_path.c_str(), nullptr) != 1) {
    Fail("cannot load the CA certificate " + o.ca_cert_path);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  if (o.crl_path.empty()) return;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(o.crl_path.c_str(), "r"), &BIO_free);
  if (!bio) Fail("cannot open the CRL " + o.crl_path);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int loaded = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    const int ok = X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    if (ok != 1) Fail("cannot add the CRL in " + o.crl_path);
    ++loaded;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (loaded == 0) Fail(o.crl_path + " holds no PEM CRL");
  // The peer's certificate must be covered by a valid CRL of its issuer and not be listed in it.
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
}

SSL_CTX* MakeContext(const TlsOptions& o, bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) Fail("SSL_CTX_new failed");
  try {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    // A partial write returns what went out; a retry may pass the same bytes at the same place.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // No read-ahead: the stream's BIO takes many records per recv() (tls_stream.cc says why).
    if (SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) Fail("cannot set the TLS 1.3 cipher suites");
    if (!o.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx, o.cipher_list.c_str()) != 1) {
      Fail("no cipher of ssl.cipher_list '" + o.cipher_list + "' is available");
    }
    if (server) {
      LoadPkcs12(ctx, o.server_cert_path, o.server_password, "server");
    } else {
      LoadPkcs12(ctx, o.client_cert_path, o.client_password, "client");
    }
    LoadTrust(ctx, o);
  } catch (...) {
    SSL_CTX_free(ctx);
    throw;
  }
  return ctx;
}

}  // namespace

TlsContext::TlsContext(TlsOptions options) {
  Wipe server_secret{&options.server_password}, client_secret{&options.client_password};
  server_ = MakeContext(options, /*server=*/true);
  try {
    client_ = MakeContext(options, /*server=*/false);
  } catch (...) {
    SSL_CTX_free(server_);
    throw;
  }
}

TlsContext::~TlsContext() {
  SSL_CTX_free(server_);
  SSL_CTX_free(client_);
}

}  // namespace mindfed::net
