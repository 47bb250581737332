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
#include <vector>

#include "common/errors.h"

namespace mindfed::net {
namespace {

// Ciphertext is gathered up to this many bytes before a send(): TLS writes one record (16 KiB)
// per BIO write, and one syscall per record would cost more than the encryption.
constexpr size_t kSendBufferBytes = 512 * 1024;
// Ciphertext is taken off the socket up to this many bytes per recv(). OpenSSL reads without
// read-ahead (a 5-byte header, then exactly the record): with read-ahead it would memmove every
// byte it holds beyond a record to re-align the next one, about two extra copies of the stream
// (measured: 6 ms of a 40 MB transfer), while one copy out of this buffer costs under half that.
constexpr size_t kReceiveBufferBytes = 256 * 1024;

SocketBio* Of(BIO* b) { return static_cast<SocketBio*>(BIO_get_data(b)); }

int BioWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  SocketBio& s = *Of(b);
  if (s.end + static_cast<size_t>(len) > s.buffer.size() && s.Drain() < 0) return -1;
  if (s.begin == s.end) s.begin = s.end = 0;
  if (s.end == s.buffer.size() && s.begin > 0) {  // make room at the back
    std::memmove(s.buffer.data(), s.buffer.data() + s.begin, s.end - s.begin);
    s.end -= s.begin;
    s.begin = 0;
  }
  const size_t room = s.buffer.size() - s.end;
  if (room == 0) {
    BIO_set_retry_write(b);  // the socket is full: OpenSSL keeps the record and retries
    return -1;
  }
  const size_t put = room < static_cast<size_t>(len) ? room : static_cast<size_t>(len);
  std::memcpy(s.buffer.data() + s.end, data, put);
  s.end += put;
  return static_cast<int>(put);
}

int BioRead(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  SocketBio& s = *Of(b);
  while (s.in_begin == s.in_end) {
    const ssize_t got = ::recv(s.fd, s.in.data(), s.in.size(), 0);
    if (got > 0) {
      s.in_begin = 0;
      s.in_end = static_cast<size_t>(got);
    } else if (got == 0) {
      return 0;  // end of stream
    } else if (errno != EINTR) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
      return -1;
    }
  }
  const size_t have = s.in_end - s.in_begin;
  const size_t take = have < static_cast<size_t>(len) ? have : static_cast<size_t>(len);
  std::memcpy(data, s.in.data() + s.in_begin, take);
  s.in_begin += take;
  return static_cast<int>(take);
}

long BioCtrl(BIO* b, int cmd, long, void*) {
  if (cmd != BIO_CTRL_FLUSH) return 0;
  BIO_clear_retry_flags(b);
  const ssize_t left = Of(b)->Drain();  // the end of a handshake flight
  if (left == 0) return 1;
  if (left > 0) BIO_set_retry_write(b);
  return 0;
}

// Socket I/O without SIGPIPE (send with MSG_NOSIGNAL), writes gathered in SocketBio.
BIO* NewSocketBio(SocketBio* state) {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mindfed socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    return m;
  }();
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, state);
  BIO_set_init(bio, 1);
  return bio;
}

}  // namespace

ssize_t SocketBio::Drain() {
  while (begin < end) {
    const ssize_t put = ::send(fd, buffer.data() + begin, end - begin, MSG_NOSIGNAL);
    if (put > 0) {
      begin += static_cast<size_t>(put);
    } else if (put < 0 && errno == EINTR) {
      continue;
    } else if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return -1;
    }
  }
  if (begin == end) begin = end = 0;
  return static_cast<ssize_t>(end - begin);
}

TlsStream::TlsStream(int fd, SSL_CTX* ctx, bool accept) : fd_(fd) {
  bio_state_.fd = fd;
  bio_state_.buffer.resize(kSendBufferBytes);
  bio_state_.in.resize(kReceiveBufferBytes);
  ssl_ = SSL_new(ctx);
  BIO* bio = ssl_ ? NewSocketBio(&bio_state_) : nullptr;
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
  // Each SSL_write_ex encrypts one record (partial-write mode); the BIO gathers them and sends
  // whenever its buffer is full, so the socket sees a few large sends, not one per record.
  size_t total = 0;
  for (int i = 0; i < count; ++i) {
    const auto* base = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t done = 0;
    while (done < iov[i].iov_len) {
      ERR_clear_error();
      size_t put = 0;
      const int ret = SSL_write_ex(ssl_, base + done, iov[i].iov_len - done, &put);
      if (ret != 1) {
        if (Failed(ret) < 0) return -1;
        return static_cast<ssize_t>(total + done);  // would block: report what went in
      }
      done += put;
    }
    total += done;
  }
  if (bio_state_.Drain() < 0) return -1;  // errno from send()
  return static_cast<ssize_t>(total);
}

bool TlsStream::HasPending() const {
  return SSL_has_pending(ssl_) == 1 || bio_state_.in_end > bio_state_.in_begin;
}

bool TlsStream::HasUnsent() const { return bio_state_.end > bio_state_.begin; }

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
