// Stream: the byte pipe under one connection: a plain non-blocking TCP socket (SocketStream) or
// TLS over one (TlsStream, net/tls_stream.h).
//
// Node drives every stream the same way from its epoll loop: Handshake() until kDone (waiting
// for EPOLLIN or EPOLLOUT as it asks), then Read() and Writev(). A plain socket has no handshake.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <string>

namespace mindfed::net {

enum class HandshakeStep { kDone, kWantRead, kWantWrite, kFailed };

// Result convention for Read/Writev: > 0 bytes moved; 0 = would block (try after epoll says
// so); -1 = the connection is gone (errno kept). Read() also returns -1 at end of stream, with
// errno ECONNRESET.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual int fd() const = 0;
  // One step of the connection set-up; kFailed: the connection must be closed (ErrorText says why).
  virtual HandshakeStep Handshake() { return HandshakeStep::kDone; }
  virtual ssize_t Read(void* dst, size_t n) = 0;
  virtual ssize_t Writev(const iovec* iov, int count) = 0;
  // True when bytes already taken off the socket wait for Read() (epoll will not signal them).
  virtual bool HasPending() const { return false; }
  // True when bytes already accepted by Writev() still wait for the socket: call Writev() (with
  // count 0 if nothing else is to go) once it is writable.
  virtual bool HasUnsent() const { return false; }
  // Why the last call failed, given its errno; never holds secret bytes.
  virtual std::string ErrorText(int err) const;
};

// A non-blocking TCP socket; owns and closes fd. Not thread-safe (used by the loop thread).
class SocketStream final : public Stream {
 public:
  explicit SocketStream(int fd) : fd_(fd) {}
  ~SocketStream() override;
  SocketStream(const SocketStream&) = delete;  // owns the fd
  SocketStream& operator=(const SocketStream&) = delete;
  int fd() const override { return fd_; }
  ssize_t Read(void* dst, size_t n) override;
  ssize_t Writev(const iovec* iov, int count) override;

 private:
  int fd_;
};

}  // namespace mindfed::net
