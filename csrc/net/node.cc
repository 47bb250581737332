#include "net/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <utility>

#include "common/errors.h"
#include "net/stream.h"
#include "net/tls_stream.h"

namespace mindfed::net {
namespace {

constexpr uint64_t kListenTag = ~uint64_t{0};
constexpr uint64_t kLoopTag = ~uint64_t{0} - 1;
constexpr int kMaxIov = 64;
constexpr int kMaxReadsPerWake = 64;

// An IPv4 or IPv6 socket address; `len` is what bind/connect take.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
};

// host: a literal IPv4, or an IPv6 with or without brackets ("::1", "[::1]").
SockAddr ParseAddress(std::string host, int port, const std::string& what) {
  if (port < 0 || port > 65535) {
    throw std::invalid_argument(what + ": port " + std::to_string(port) + " out of range");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  SockAddr sa;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&sa.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa.ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    sa.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    sa.len = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument(what + ": '" + host + "' is not an IPv4 or IPv6 address");
  }
  return sa;
}

// "ip:port" or "[ipv6]:port".
SockAddr ParseHostPort(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    throw std::invalid_argument("peer address '" + address + "' is not 'ip:port'");
  }
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port <= 0) throw std::invalid_argument("peer address '" + address + "' has no valid port");
  return ParseAddress(address.substr(0, colon), port, "peer address '" + address + "'");
}

// "ip:port", IPv6 in brackets.
std::string FormatAddress(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &v6.sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(v6.sin6_port));
  }
  const auto& v4 = reinterpret_cast<const sockaddr_in&>(ss);
  inet_ntop(AF_INET, &v4.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(v4.sin_port));
}

int PortOf(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port)
                                  : ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
}

std::string ErrnoText(int err) { return std::strerror(err); }

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

struct OutItem {
  uint8_t header[kHeaderBytes];
  OutPayload payload;
  size_t sent = 0;  // of header + payload

  const uint8_t* data() const { return payload.copy.empty() ? payload.data : payload.copy.data(); }
  size_t size() const { return payload.copy.empty() ? payload.size : payload.copy.size(); }
};

struct Node::Conn {
  uint64_t id = 0;
  std::string peer;
  std::unique_ptr<Stream> stream;
  FrameDecoder decoder;
  std::deque<OutItem> out;
  bool connecting = false;
  bool handshaking = false;      // TLS: no frames in or out until the handshake is done
  bool handshake_write = false;  // the handshake waits for EPOLLOUT
  // TLS 1.3: the server checks our certificate after our handshake is done; until a frame comes
  // back, a close is most likely its refusal (it sends an alert, which a reset may overtake).
  bool unconfirmed = false;
  bool inbound = false;
  uint32_t interest = 0;  // events registered with epoll

  Conn(uint64_t id_in, std::string peer_in, std::unique_ptr<Stream> stream_in, uint64_t max_frame_bytes,
       std::shared_ptr<BufferPool> pool)
      : id(id_in),
        peer(std::move(peer_in)),
        stream(std::move(stream_in)),
        decoder(max_frame_bytes, std::move(pool)) {}
};

Node::Node(const NodeOptions& options)
    : options_(options), tls_(options.tls), pool_(std::make_shared<BufferPool>(options.buffer_cache_bytes)) {
  SockAddr sa = ParseAddress(options.host, options.port, "listen address");
  listen_fd_ = socket(sa.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  loop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  auto fail = [&](const std::string& what) {
    const int err = errno;
    for (int fd : {listen_fd_, epoll_fd_, loop_fd_, wake_fd_}) {
      if (fd >= 0) ::close(fd);
    }
    throw NetError(what + " " + options.host + ":" + std::to_string(options.port) + ": " +
                   ErrnoText(err));
  };
  if (listen_fd_ < 0 || epoll_fd_ < 0 || loop_fd_ < 0 || wake_fd_ < 0) fail("cannot set up");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd_, sa.get(), sa.len) != 0) fail("cannot bind");
  if (listen(listen_fd_, SOMAXCONN) != 0) fail("cannot listen on");
  socklen_t len = sizeof sa.ss;
  getsockname(listen_fd_, sa.get(), &len);
  port_ = PortOf(sa.ss);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kLoopTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, loop_fd_, &ev);
  thread_ = std::thread([this] { Run(); });
}

Node::~Node() {
  Close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Node::Close() {
  std::call_once(close_once_, [this] {
    stop_.store(true);
    const uint64_t one = 1;
    (void)!::write(loop_fd_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
    ::close(epoll_fd_);
    ::close(loop_fd_);
  });
}

uint64_t Node::Queue(Command cmd) {
  const uint64_t id = cmd.conn_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(std::move(cmd));
  }
  const uint64_t one = 1;
  (void)!::write(loop_fd_, &one, sizeof one);
  return id;
}

uint64_t Node::SendTo(const std::string& address, const FrameHeader& header, OutPayload payload) {
  ParseHostPort(address);  // std::invalid_argument now, not a closed connection later
  if (stop_.load()) throw NetError("node is closed; cannot send to " + address);
  Command cmd{0, {}, header, std::move(payload)};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_address_.find(address);
    if (it != by_address_.end()) {
      cmd.conn_id = it->second;
    } else {
      cmd.conn_id = next_conn_id_++;
      cmd.connect_to = address;
      by_address_.emplace(address, cmd.conn_id);
      live_.insert(cmd.conn_id);
    }
  }
  return Queue(std::move(cmd));
}

void Node::SendOn(uint64_t conn_id, const FrameHeader& header, OutPayload payload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_.load() || live_.count(conn_id) == 0) {
      throw NetError("connection " + std::to_string(conn_id) + " is closed");
    }
  }
  Queue(Command{conn_id, {}, header, std::move(payload)});
}

void Node::Release(uint64_t owner_token) {
  if (owner_token == 0) return;
  Event ev;
  ev.kind = Event::kReleased;
  ev.owner_token = owner_token;
  Push(std::move(ev));
}

void Node::Push(Event ev) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool was_empty = ready_.empty();
  ready_.push_back(std::move(ev));
  if (was_empty) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

void Node::TakeReady(std::vector<Event>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_.empty()) return;
  for (auto& ev : ready_) out->push_back(std::move(ev));
  ready_.clear();
  uint64_t count = 0;  // under mu_, so no Push can slip between emptying and resetting
  (void)!::read(wake_fd_, &count, sizeof count);
}

void Node::Run() {
  epoll_event events[64];
  while (!stop_.load()) {
    const int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n && !stop_.load(); ++i) {
      const uint64_t tag = events[i].data.u64;
      const uint32_t what = events[i].events;
      if (tag == kLoopTag) {
        uint64_t count = 0;
        (void)!::read(loop_fd_, &count, sizeof count);
        RunCommands();
        continue;
      }
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      auto it = conns_.find(tag);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      if (c.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.stream->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (what & (EPOLLERR | EPOLLHUP))) {
          CloseConn(c.id, "cannot connect to " + c.peer + ": " + ErrnoText(err ? err : ECONNREFUSED));
          continue;
        }
        if (!(what & EPOLLOUT)) continue;
        c.connecting = false;
      }
      if (c.handshaking) {
        StepHandshake(c);
        continue;
      }
      if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        OnReadable(c);
        if (conns_.count(tag) == 0) continue;
      }
      if (what & EPOLLOUT) OnWritable(c);
    }
  }
  // Shut down: every borrowed payload goes back to its owner.
  std::vector<Command> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(commands_);
    live_.clear();
    by_address_.clear();
  }
  for (auto& cmd : left) {
    Release(cmd.payload.owner_token);
  }
  for (auto& [id, conn] : conns_) {
    for (auto& item : conn->out) {
      Release(item.payload.owner_token);
    }
  }
  conns_.clear();
}

void Node::RunCommands() {
  std::vector<Command> cmds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cmds.swap(commands_);
  }
  for (auto& cmd : cmds) {
    if (!cmd.connect_to.empty()) Connect(cmd.conn_id, cmd.connect_to);
    auto it = conns_.find(cmd.conn_id);
    if (it == conns_.end()) {  // closed meanwhile: the kClosed event already says so
      Release(cmd.payload.owner_token);
      continue;
    }
    Enqueue(*it->second, std::move(cmd));
  }
}

void Node::Connect(uint64_t conn_id, const std::string& address) {
  SockAddr sa = ParseHostPort(address);
  const int fd = socket(sa.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(conn_id);
      by_address_.erase(address);
    }
    Event ev;
    ev.kind = Event::kClosed;
    ev.conn_id = conn_id;
    ev.peer = address;
    ev.reason = "cannot open a socket to " + address + ": " + ErrnoText(err);
    Push(std::move(ev));
    return;
  }
  SetNoDelay(fd);
  std::unique_ptr<Stream> stream = NewStream(fd, /*accepted=*/false);
  if (!stream) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(conn_id);
      by_address_.erase(address);
    }
    Event ev;
    ev.kind = Event::kClosed;
    ev.conn_id = conn_id;
    ev.peer = address;
    ev.reason = "cannot set up TLS to " + address;
    Push(std::move(ev));
    return;
  }
  auto conn = std::make_unique<Conn>(conn_id, address, std::move(stream), options_.max_frame_bytes, pool_);
  Conn& c = *conn;
  conns_.emplace(conn_id, std::move(conn));
  c.connecting = true;
  c.handshaking = options_.tls != nullptr;
  epoll_event ev{};
  ev.events = c.interest = EPOLLIN | EPOLLOUT;
  ev.data.u64 = conn_id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  if (::connect(fd, sa.get(), sa.len) != 0 && errno != EINPROGRESS) {
    CloseConn(conn_id, "cannot connect to " + address + ": " + ErrnoText(errno));
  }
}

void Node::Accept() {
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of fds: try again on the next wake
    if (accepted_ >= options_.max_connections) {
      ::close(fd);  // over client.connection_num: the peer sees the connection reset
      continue;
    }
    SetNoDelay(fd);
    std::unique_ptr<Stream> stream = NewStream(fd, /*accepted=*/true);
    if (!stream) continue;  // out of memory for TLS: the peer sees the connection closed
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = next_conn_id_++;
      live_.insert(id);
    }
    auto conn = std::make_unique<Conn>(id, FormatAddress(sa), std::move(stream), options_.max_frame_bytes, pool_);
    conn->inbound = true;
    conn->handshaking = options_.tls != nullptr;  // the client speaks first: wait for EPOLLIN
    epoll_event ev{};
    ev.events = conn->interest = EPOLLIN;
    ev.data.u64 = id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    conns_.emplace(id, std::move(conn));
    ++accepted_;
  }
}

void Node::Enqueue(Conn& c, Command cmd) {
  OutItem item;
  cmd.header.payload_len = cmd.payload.copy.empty() ? cmd.payload.size : cmd.payload.copy.size();
  EncodeHeader(cmd.header, item.header);
  item.payload = std::move(cmd.payload);
  const bool was_idle = c.out.empty();
  c.out.push_back(std::move(item));
  if (was_idle && !c.connecting && !c.handshaking) Flush(c);
}

void Node::OnReadable(Conn& c) {
  const uint64_t id = c.id;
  try {
    // Bytes TLS has already taken off the socket raise no epoll event: read them all now.
    for (int i = 0; i < kMaxReadsPerWake || c.stream->HasPending(); ++i) {
      auto [dst, room] = c.decoder.WriteSpace();
      const ssize_t got = c.stream->Read(dst, room);
      if (got == 0) return;
      if (got < 0) {
        const int err = errno;
        CloseConn(id, GoneReason(c, err, err == ECONNRESET ? "peer " + c.peer + " closed the connection"
                                                           : "connection to " + c.peer + " failed: " +
                                                                 c.stream->ErrorText(err)));
        return;
      }
      c.decoder.Commit(static_cast<size_t>(got));
      if (c.decoder.HasFrame()) c.unconfirmed = false;
      while (c.decoder.HasFrame()) {
        Event ev;
        ev.kind = Event::kFrame;
        ev.conn_id = id;
        ev.peer = c.peer;
        ev.frame = c.decoder.TakeFrame();
        Push(std::move(ev));
      }
      // drained for now (epoll is level-triggered)
      if (static_cast<size_t>(got) < room && !c.stream->HasPending()) return;
    }
  } catch (const ProtocolError& e) {
    CloseConn(id, "bad frame from " + c.peer + ": " + e.what());
  } catch (const std::bad_alloc&) {
    CloseConn(id, "out of memory for a frame from " + c.peer);
  }
}

void Node::OnWritable(Conn& c) { Flush(c); }

std::string Node::GoneReason(const Conn& c, int err, std::string otherwise) const {
  if (c.unconfirmed && (err == ECONNRESET || err == EPIPE)) {
    return "TLS: " + c.peer + " closed the connection before answering: it refused this node's certificate "
           "(or failed)";
  }
  if (options_.tls && err == EPROTO) {  // an alert from the peer (e.g. "unknown ca"), or a bad record
    return "TLS error on the connection to " + c.peer + ": " + c.stream->ErrorText(err);
  }
  return otherwise;
}

void Node::ReloadTls(std::shared_ptr<const TlsContext> tls) {
  if (!options_.tls) throw NetError("node TLS: this node was started without TLS; it cannot take certificates");
  if (!tls) throw NetError("node TLS: no TLS context to reload");
  std::lock_guard<std::mutex> lock(tls_mu_);
  tls_.swap(tls);  // the old context is released here unless a connection being set up still holds it
}

std::shared_ptr<const TlsContext> Node::CurrentTls() const {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_;
}

std::unique_ptr<Stream> Node::NewStream(int fd, bool accepted) {
  if (!options_.tls) return std::make_unique<SocketStream>(fd);
  // SSL_new takes its own reference to the SSL_CTX: the connection keeps this context alive after
  // a later ReloadTls drops it.
  const std::shared_ptr<const TlsContext> tls = CurrentTls();
  try {
    return std::make_unique<TlsStream>(fd, accepted ? tls->server() : tls->client(), accepted);
  } catch (const NetError&) {
    return nullptr;  // TlsStream closed fd
  }
}

void Node::StepHandshake(Conn& c) {
  const HandshakeStep step = c.stream->Handshake();
  if (step == HandshakeStep::kFailed) {
    const int err = errno;
    CloseConn(c.id, "TLS handshake with " + c.peer + " failed: " + c.stream->ErrorText(err));
    return;
  }
  if (step != HandshakeStep::kDone) {
    c.handshake_write = step == HandshakeStep::kWantWrite;
    UpdateInterest(c);
    return;
  }
  c.handshaking = c.handshake_write = false;
  c.unconfirmed = !c.inbound;
  const uint64_t id = c.id;
  if (!c.out.empty() && !Flush(c)) return;
  UpdateInterest(c);
  if (c.stream->HasPending()) {  // frames that came with the end of the handshake
    OnReadable(c);
    if (conns_.count(id) == 0) return;
  }
}

bool Node::Flush(Conn& c) {
  while (!c.out.empty()) {
    iovec iov[kMaxIov];
    int count = 0;
    for (auto it = c.out.begin(); it != c.out.end() && count + 2 <= kMaxIov; ++it) {
      size_t skip = it->sent;
      if (skip < kHeaderBytes) {
        iov[count++] = {it->header + skip, kHeaderBytes - skip};
        skip = 0;
      } else {
        skip -= kHeaderBytes;
      }
      if (it->size() > skip) {
        iov[count++] = {const_cast<uint8_t*>(it->data()) + skip, it->size() - skip};
      }
    }
    const ssize_t put = c.stream->Writev(iov, count);
    if (put < 0) {
      const int err = errno;
      CloseConn(c.id, GoneReason(c, err, "cannot write to " + c.peer + ": " + c.stream->ErrorText(err)));
      return false;
    }
    if (put == 0) break;
    size_t done = static_cast<size_t>(put);
    while (!c.out.empty()) {
      OutItem& front = c.out.front();
      const size_t total = kHeaderBytes + front.size();
      const size_t step = done < total - front.sent ? done : total - front.sent;
      front.sent += step;
      done -= step;
      if (front.sent < total) break;
      Release(front.payload.owner_token);
      c.out.pop_front();
    }
  }
  if (c.out.empty() && c.stream->HasUnsent() && c.stream->Writev(nullptr, 0) < 0) {
    const int err = errno;
    CloseConn(c.id, "cannot write to " + c.peer + ": " + c.stream->ErrorText(err));
    return false;
  }
  UpdateInterest(c);
  return true;
}

void Node::UpdateInterest(Conn& c) {
  const bool write = c.handshaking ? c.connecting || c.handshake_write
                                    : c.connecting || !c.out.empty() || c.stream->HasUnsent();
  const uint32_t want = EPOLLIN | (write ? EPOLLOUT : 0u);
  if (want == c.interest) return;
  epoll_event ev{};
  ev.events = c.interest = want;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.stream->fd(), &ev);
}

void Node::CloseConn(uint64_t conn_id, const std::string& reason) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> conn = std::move(it->second);
  conns_.erase(it);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn->stream->fd(), nullptr);
  if (conn->inbound) --accepted_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(conn_id);
    auto by = by_address_.find(conn->peer);
    if (by != by_address_.end() && by->second == conn_id) by_address_.erase(by);
  }
  for (auto& item : conn->out) {
    Release(item.payload.owner_token);
  }
  Event ev;
  ev.kind = Event::kClosed;
  ev.conn_id = conn_id;
  ev.peer = conn->peer;
  ev.reason = reason;
  Push(std::move(ev));
}

}  // namespace mindfed::net
