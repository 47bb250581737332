#include "net/stream.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace mindfed::net {

std::string Stream::ErrorText(int err) const { return std::strerror(err); }

SocketStream::~SocketStream() {
  if (fd_ >= 0) ::close(fd_);
}

ssize_t SocketStream::Read(void* dst, size_t n) {
  for (;;) {
    const ssize_t got = ::recv(fd_, dst, n, 0);
    if (got > 0) return got;
    if (got == 0) {
      errno = ECONNRESET;  // orderly close by the peer: the same as gone for us
      return -1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

ssize_t SocketStream::Writev(const iovec* iov, int count) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(count);
  for (;;) {
    // sendmsg, not writev: MSG_NOSIGNAL turns a write to a dead peer into EPIPE, not SIGPIPE.
    const ssize_t put = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (put >= 0) return put;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

}  // namespace mindfed::net
