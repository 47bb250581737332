// Node: one TCP endpoint of the cluster, with its own I/O thread.
//
// The thread runs an epoll loop over non-blocking sockets: the listening socket (bound at
// construction, port 0 picks a free one), accepted connections, and connections it opens to
// peers on demand ("ip:port", one per address, reused). Each connection has an outbound queue
// written with scatter/gather (header + the caller's payload, no intermediate copy) and a
// FrameDecoder that receives large payloads in place.
//
// With NodeOptions::tls set, every connection (accepted or opened) is mutual TLS: it is
// unusable until its handshake has succeeded, frames queued meanwhile wait, and a failed
// handshake (peer certificate from another CA, revoked, none; a plain-TCP peer) closes it with
// a kClosed event whose reason starts "TLS handshake with <peer> failed: " and names the cause.
// Without it the transport is plain TCP.
//
// Rotation: ReloadTls() swaps in another TlsContext (new certificates, CA or CRL) while the node
// runs. Only connections accepted or opened after the call use it; established connections, their
// frames in flight and handshakes already begun keep the context they started with (each SSL
// object holds a reference to its SSL_CTX, so the old one lives until its last connection
// closes). Outbound connections are reused per address, so a peer reached before the reload is
// still reached over the old session until that connection closes.
//
// Everything the loop produces — whole inbound frames, closed connections, and payloads whose
// write has finished (so their owner may let go of the memory) — goes into one ordered ready
// queue. wake_fd() is an eventfd that is readable exactly while that queue is non-empty;
// TakeReady() empties it without blocking. The loop never calls back into its user, so a
// Python binding can run it without the GIL and never from a foreign thread.
//
// Thread safety: Port(), WakeFd(), Send*(), TakeReady(), ReloadTls() and Close() may be called
// from any thread. Failure modes: the constructor throws NetError when it cannot bind/listen;
// SendTo() throws std::invalid_argument on a malformed address; SendOn() throws NetError
// for a connection that is closed; ReloadTls() throws NetError on a node made without TLS (or a
// null context) and then changes nothing. Connection-level failures (refused, reset, bad frame from
// the peer, the peer closing) arrive as a kClosed event naming the connection and the reason.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "net/frame.h"
#include "net/tls_context.h"

namespace mindfed::net {

class Stream;

struct NodeOptions {
  std::string host = "127.0.0.1";  // IPv4 literal to listen on
  uint16_t port = 0;               // 0: a free port, see Port()
  size_t max_connections = 10000;  // accepted connections beyond this are closed at once
  uint64_t max_frame_bytes = uint64_t{1} << 34;  // larger inbound payloads close the connection
  size_t buffer_cache_bytes = size_t{1} << 31;    // idle payload buffers kept for reuse (BufferPool)
  std::shared_ptr<const TlsContext> tls;           // null: plain TCP; see Node::ReloadTls
};

// Bytes to send. Either `data`/`size` borrowed from the caller, who must keep them alive and
// unchanged until a kReleased event with `owner_token` comes back, or an owned copy in `copy`
// (small payloads; data/size are then ignored and no event is reported).
struct OutPayload {
  const uint8_t* data = nullptr;
  size_t size = 0;
  uint64_t owner_token = 0;  // non-zero: report kReleased when done with data
  std::vector<uint8_t> copy;
};

struct Event {
  enum Kind { kFrame, kClosed, kReleased };
  Kind kind = kFrame;
  uint64_t conn_id = 0;
  std::string peer;    // "ip:port" of the remote end
  Frame frame;         // kFrame
  std::string reason;  // kClosed
  uint64_t owner_token = 0;  // kReleased
};

class Node {
 public:
  explicit Node(const NodeOptions& options);
  ~Node();  // Close()
  Node(const Node&) = delete;  // owns a thread and sockets
  Node& operator=(const Node&) = delete;

  uint16_t Port() const { return port_; }
  int WakeFd() const { return wake_fd_; }
  // Where inbound payload buffers come from; give them back with Put() when done. Outlives
  // the node if the caller keeps the pointer.
  const std::shared_ptr<BufferPool>& pool() const { return pool_; }

  // Queues a frame to `address` ("a.b.c.d:port"), connecting first if no connection to it is
  // open. Returns the connection id, which a later kClosed event names. Non-blocking.
  uint64_t SendTo(const std::string& address, const FrameHeader& header, OutPayload payload);
  // Queues a frame on an existing connection (e.g. a reply on the one a request came in on).
  void SendOn(uint64_t conn_id, const FrameHeader& header, OutPayload payload);
  // New connections (accepted or opened from now on) use `tls`; existing ones keep theirs. The
  // caller builds the context first (TlsContext's constructor is where bad material is refused),
  // so a failed load never reaches the node. Throws NetError on a plain-TCP node or a null tls.
  void ReloadTls(std::shared_ptr<const TlsContext> tls);
  // The context new connections get now (null on a plain-TCP node).
  std::shared_ptr<const TlsContext> CurrentTls() const;
  // Moves every ready event into *out (appending), in the order they happened. Non-blocking.
  void TakeReady(std::vector<Event>* out);
  // Stops and joins the I/O thread, closes every socket; pending sends are released (kReleased
  // events stay takeable). Idempotent.
  void Close();

 private:
  struct Conn;
  struct Command {
    uint64_t conn_id;
    std::string connect_to;  // non-empty: open this connection first
    FrameHeader header;
    OutPayload payload;
  };

  void Run();
  void Push(Event ev);
  void Release(uint64_t owner_token);  // kReleased event; nothing for 0
  void RunCommands();
  void Accept();
  void Connect(uint64_t conn_id, const std::string& address);
  void Enqueue(Conn& c, Command cmd);
  void OnReadable(Conn& c);
  void OnWritable(Conn& c);
  void StepHandshake(Conn& c);  // c may be gone afterwards
  std::string GoneReason(const Conn& c, int err, std::string otherwise) const;  // why c died
  std::unique_ptr<Stream> NewStream(int fd, bool accepted);  // closes fd on failure
  bool Flush(Conn& c);  // false: the connection was closed (c is gone)
  void UpdateInterest(Conn& c);
  void CloseConn(uint64_t conn_id, const std::string& reason);
  uint64_t Queue(Command cmd);

  NodeOptions options_;  // options_.tls: the context at construction (only its presence is read)
  mutable std::mutex tls_mu_;              // guards tls_
  std::shared_ptr<const TlsContext> tls_;  // for new connections; swapped by ReloadTls
  std::shared_ptr<BufferPool> pool_;
  int listen_fd_ = -1, epoll_fd_ = -1, loop_fd_ = -1, wake_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::once_flag close_once_;

  std::mutex mu_;  // guards the fields below
  std::vector<Command> commands_;
  std::unordered_map<std::string, uint64_t> by_address_;  // outbound connections
  std::unordered_set<uint64_t> live_;  // ids that SendOn may still use
  uint64_t next_conn_id_ = 1;
  std::deque<Event> ready_;

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  size_t accepted_ = 0;
};

}  // namespace mindfed::net
