// TlsContext: the certificates, trust and policy of one node's mutual TLS (OpenSSL libssl).
//
// Built once from TlsOptions, before the node binds: two SSL_CTX, one for accepted connections
// (certificate and key from server.p12) and one for connections the node opens (client.p12).
// Both sides present their certificate and require the peer's (SSL_VERIFY_PEER |
// SSL_VERIFY_FAIL_IF_NO_PEER_CERT), verified against the CA file; with a CRL file the store
// checks revocation of the peer's certificate (X509_V_FLAG_CRL_CHECK), so a revoked peer fails
// the handshake. TLS 1.2 is the minimum; cipher_list sets the TLS 1.2 suites (TLS 1.3 keeps
// OpenSSL's AEAD-only defaults); renegotiation and session tickets are off. Peers are
// authenticated by the CA, not by host name: nodes reach each other by IP.
//
// Failure modes: the constructor throws NetError naming the file and the cause ("PKCS12_parse
// failed" for a wrong password, MindSpore's text); passwords never appear in a message and are
// not kept after the constructor. Thread safety: immutable after construction; SSL objects made
// from it are used by one thread each.
#pragma once

#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace mindfed::net {

struct TlsOptions {
  std::string server_cert_path;  // PKCS#12: certificate + key presented to connecting peers
  std::string server_password;
  std::string client_cert_path;  // PKCS#12: certificate + key presented when connecting
  std::string client_password;
  std::string ca_cert_path;      // PEM: the CA (or CAs) that peer certificates must chain to
  std::string crl_path;          // PEM CRL(s) of that CA; "" = no revocation check
  std::string cipher_list;       // OpenSSL TLS 1.2 cipher list; "" = OpenSSL's default
};

class TlsContext {
 public:
  explicit TlsContext(TlsOptions options);  // options' passwords are wiped
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;  // owns the SSL_CTX
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* server() const { return server_; }  // for accepted connections
  SSL_CTX* client() const { return client_; }  // for connections this node opens

 private:
  SSL_CTX* server_ = nullptr;
  SSL_CTX* client_ = nullptr;
};

}  // namespace mindfed::net
