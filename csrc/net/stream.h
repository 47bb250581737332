// Stream: the byte pipe under one connection. Today a plain non-blocking TCP socket.
//
// TLS SEAM (a later issue): a TlsStream would wrap the same fd with an OpenSSL SSL object,
// run the handshake from the node's loop (WantRead/WantWrite map onto EPOLLIN/EPOLLOUT),
// and implement Read() with SSL_read_ex and Writev() by SSL_write_ex over each iovec.
// Node only ever calls these two methods plus fd(), so nothing else has to change.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace mindfed::net {

// Result convention for both calls: > 0 bytes moved; 0 = would block (try after epoll says
// so); -1 = the connection is gone (errno kept). Read() also returns -1 at end of stream.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual int fd() const = 0;
  virtual ssize_t Read(void* dst, size_t n) = 0;
  virtual ssize_t Writev(const iovec* iov, int count) = 0;
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
