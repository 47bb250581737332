#include "net/tls_stream.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "common/errors.h"

namespace mindfed::net {
namespace {

int SocketOf(BIO* b) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b))); }

int BioWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t put = ::send(SocketOf(b), data, static_cast<size_t>(len), MSG_NOSIGNAL);
    if (put >= 0) return static_cast<int>(put);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    return -1;
  }
}

int BioRead(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t got = ::recv(SocketOf(b), data, static_cast<size_t>(len), 0);
    if (got >= 0) return static_cast<int>(got);  // 0: end of stream
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
    return -1;
  }
}

long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

// A socket BIO that never raises SIGPIPE; the fd stays owned by the stream.
BIO* NewSocketBio(int fd) {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mindfed socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    return m;
  }();
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  BIO_set_init(bio, 1);
  return bio;
}

}  // namespace

TlsStream::TlsStream(int fd, SSL_CTX* ctx, bool accept) : fd_(fd) {
  ssl_ = SSL_new(ctx);
  BIO* bio = ssl_ ? NewSocketBio(fd) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    ::close(fd_);
    ERR_clear_error();
    throw NetError("cannot create a TLS connection (out of memory)");
  }
  SSL_set_bio(ssl_, bio, bio);
  // A peer closing without close_notify is an ordinary close: frames carry their own length,
  // so a truncated stream is caught by the frame decoder.
  SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (accept) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);  // frees the BIO; no close_notify (the peer sees the TCP close)
  ::close(fd_);
}

HandshakeStep TlsStream::Handshake() {
  ERR_clear_error();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) return HandshakeStep::kDone;
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ) return HandshakeStep::kWantRead;
  if (err == SSL_ERROR_WANT_WRITE) return HandshakeStep::kWantWrite;
  Failed(ret);
  return HandshakeStep::kFailed;
}

ssize_t TlsStream::Read(void* dst, size_t n) {
  ERR_clear_error();
  size_t got = 0;
  const int ret = SSL_read_ex(ssl_, dst, n, &got);
  if (ret == 1) return static_cast<ssize_t>(got);
  return Failed(ret);
}

ssize_t TlsStream::Writev(const iovec* iov, int count) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) {
    ERR_clear_error();
    size_t put = 0;
    const int ret = SSL_write_ex(ssl_, iov[i].iov_base, iov[i].iov_len, &put);
    if (ret != 1) {
      const ssize_t r = Failed(ret);
      if (r < 0) return -1;
      break;  // would block: report what went out
    }
    total += put;
    if (put < iov[i].iov_len) break;
  }
  return static_cast<ssize_t>(total);
}

bool TlsStream::HasPending() const { return SSL_pending(ssl_) > 0; }

ssize_t TlsStream::Failed(int ret) {
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
  if (err == SSL_ERROR_ZERO_RETURN) {
    errno = ECONNRESET;
    return -1;
  }
  if (err == SSL_ERROR_SYSCALL) {
    if (errno == 0) errno = ECONNRESET;
    ERR_clear_error();
    return -1;
  }
  const unsigned long code = ERR_peek_error();
  char reason[256] = "TLS error";
  if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  error_ = reason;
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) error_ += std::string(" (peer certificate: ") + X509_verify_cert_error_string(verify) + ")";
  errno = EPROTO;
  return -1;
}

std::string TlsStream::ErrorText(int err) const { return error_.empty() ? std::strerror(err) : error_; }

}  // namespace mindfed::net
