// TlsStream: TLS (OpenSSL libssl) over one non-blocking TCP socket, driven by the node's loop.
//
// Handshake() runs SSL_do_handshake as far as the socket allows and says which epoll event to
// wait for next; a peer whose certificate does not verify (other CA, revoked, expired, none)
// makes it return kFailed, and ErrorText() names the cause (OpenSSL's reason and the X.509
// verify result). Read() is SSL_read_ex straight into the caller's buffer (the frame decoder's
// payload, so a large payload is decrypted in place); Writev() is SSL_write_ex over each iovec
// in order, stopping at the first short write, so a retry after "would block" passes the same
// bytes again as OpenSSL requires. Socket I/O goes through a BIO that gathers records into one
// send() of up to 512 KiB with MSG_NOSIGNAL (a dead peer is EPIPE, never SIGPIPE); what the
// socket did not take yet is sent by the next Writev (HasUnsent() asks for EPOLLOUT). The BIO
// also recv()s up to 256 KiB at a time and hands OpenSSL the exact header and record lengths it
// asks for; HasPending() counts what it holds. Owns the fd. Not thread-safe (the loop thread only).
#pragma once

#include <string>
#include <vector>

#include "net/stream.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace mindfed::net {

// The BIO's state (see tls_stream.cc): ciphertext waiting for the socket, and ciphertext taken off
// the socket that OpenSSL has not asked for yet.
struct SocketBio {
  int fd = -1;
  std::vector<uint8_t> buffer;
  size_t begin = 0, end = 0;
  ssize_t Drain();  // sends what it can: bytes still waiting, or -1 (errno) if the socket failed
  std::vector<uint8_t> in;
  size_t in_begin = 0, in_end = 0;
};

class TlsStream final : public Stream {
 public:
  // accept: this end is the TLS server (an accepted connection). Throws NetError if OpenSSL
  // cannot make the SSL object (fd is then closed).
  TlsStream(int fd, SSL_CTX* ctx, bool accept);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;  // owns the fd and the SSL
  TlsStream& operator=(const TlsStream&) = delete;

  int fd() const override { return fd_; }
  HandshakeStep Handshake() override;
  ssize_t Read(void* dst, size_t n) override;
  ssize_t Writev(const iovec* iov, int count) override;
  bool HasPending() const override;
  bool HasUnsent() const override;
  std::string ErrorText(int err) const override;

 private:
  // Maps a failed SSL call onto the Stream convention (0 would block, -1 gone + error_).
  ssize_t Failed(int ret);
  int fd_;
  SocketBio bio_state_;
  SSL* ssl_ = nullptr;
  std::string error_;
};

}  // namespace mindfed::net
