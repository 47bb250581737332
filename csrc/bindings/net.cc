// _core.net: the node-to-node TCP transport (net/node.h) and its frame codec.
//
// Ownership across the boundary: a payload passed to send() larger than kCopyBelowBytes is not
// copied. Its Py_buffer is held here, keyed by a token; the I/O thread only sees the raw
// pointer and reports the token back (Event::kReleased) once the bytes are written, and
// take_ready()/close(), which run with the GIL, release the buffer. Inbound payloads were
// received straight into a PayloadBuffer, which becomes the owner of the numpy array returned
// (a capsule), so no copy is made in either direction.
#include <Python.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bindings/bind.h"
#include "common/errors.h"
#include "net/frame.h"
#include "net/node.h"
#include "net/tls_context.h"

namespace mindfed::bindings {
namespace {

using net::Event;
using net::FrameHeader;
using net::Node;
using net::NodeOptions;
using net::OutPayload;
using net::PayloadBuffer;
using net::TlsContext;
using net::TlsOptions;

constexpr size_t kCopyBelowBytes = 64 * 1024;  // below this a copy is cheaper than the bookkeeping
constexpr int kClosedType = -1;

// A C-contiguous view of any buffer object; released (with the GIL held) on destruction.
class HeldBuffer {
 public:
  explicit HeldBuffer(const py::object& obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_C_CONTIGUOUS) != 0) throw py::error_already_set();
  }
  ~HeldBuffer() { PyBuffer_Release(&view_); }
  HeldBuffer(const HeldBuffer&) = delete;  // one release per acquire
  HeldBuffer& operator=(const HeldBuffer&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// Owns a received payload while numpy uses it; gives it back to the node's pool at the end.
struct ArrayOwner {
  PayloadBuffer buffer;
  std::shared_ptr<net::BufferPool> pool;
  ~ArrayOwner() {
    if (pool) pool->Put(std::move(buffer));
  }
};

py::array_t<uint8_t> ToArray(PayloadBuffer&& buffer, std::shared_ptr<net::BufferPool> pool) {
  auto* owner = new ArrayOwner{std::move(buffer), std::move(pool)};
  py::capsule free_owner(owner, [](void* p) { delete static_cast<ArrayOwner*>(p); });
  return py::array_t<uint8_t>({static_cast<py::ssize_t>(owner->buffer.size())}, {1},
                              owner->buffer.data(), free_owner);
}

uint16_t CheckU16(int value, const char* what) {
  if (value < 0 || value > 0xFFFF) {
    throw std::invalid_argument(std::string(what) + " " + std::to_string(value) + " is not in [0, 65535]");
  }
  return static_cast<uint16_t>(value);
}

class PyNode;
std::unordered_set<PyNode*>& LiveNodes() {  // guarded by the GIL; leaked so exit order is moot
  static auto* nodes = new std::unordered_set<PyNode*>();
  return *nodes;
}

class PyNode {
 public:
  PyNode(const std::string& host, int port, size_t max_connections, uint64_t max_frame_bytes,
         size_t buffer_cache_bytes, const TlsOptions* tls) {
    if (port < 0 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " out of range");
    if (max_connections == 0) throw std::invalid_argument("max_connections must be >= 1");
    NodeOptions options;
    options.host = host;
    options.port = static_cast<uint16_t>(port);
    options.max_connections = max_connections;
    options.max_frame_bytes = max_frame_bytes;
    options.buffer_cache_bytes = buffer_cache_bytes;
    std::unique_ptr<TlsOptions> tls_copy(tls ? new TlsOptions(*tls) : nullptr);  // wiped by TlsContext
    {
      py::gil_scoped_release nogil;  // PKCS#12 key derivation and file reads
      if (tls_copy) options.tls = std::make_shared<TlsContext>(std::move(*tls_copy));
      node_ = std::make_unique<Node>(options);
    }
    LiveNodes().insert(this);
  }
  ~PyNode() {
    LiveNodes().erase(this);
    Shutdown(/*release_gil=*/false);  // the loop thread never needs the GIL, so holding it is safe
  }
  PyNode(const PyNode&) = delete;
  PyNode& operator=(const PyNode&) = delete;

  int Port() const { return node_ ? node_->Port() : parked_->Port(); }
  int WakeFd() const { return node_ ? node_->WakeFd() : parked_->WakeFd(); }

  uint64_t Send(const py::object& peer, int type, uint64_t request_id, int flags,
                const py::object& payload) {
    if (!node_) throw NetError("node is closed");
    FrameHeader header;
    header.type = CheckU16(type, "type");
    header.flags = CheckU16(flags, "flags");
    header.request_id = request_id;
    auto held = std::make_unique<HeldBuffer>(payload);
    OutPayload out;
    uint64_t token = 0;
    if (held->size() < kCopyBelowBytes) {
      out.copy.assign(held->data(), held->data() + held->size());
      held.reset();
    } else {
      token = next_token_++;
      out.data = held->data();
      out.size = held->size();
      out.owner_token = token;
      held_.emplace(token, std::move(held));  // before the loop can report it released
    }
    try {
      if (py::isinstance<py::int_>(peer)) {
        const auto conn_id = peer.cast<uint64_t>();
        node_->SendOn(conn_id, header, std::move(out));
        return conn_id;
      }
      if (!py::isinstance<py::str>(peer)) throw py::type_error("peer must be 'ip:port' (str) or a connection id (int)");
      return node_->SendTo(peer.cast<std::string>(), header, std::move(out));
    } catch (...) {
      if (token != 0) held_.erase(token);
      throw;
    }
  }

  py::list TakeReady() {
    py::list result;
    if (!node_) return result;
    std::vector<Event> events;
    node_->TakeReady(&events);
    for (auto& ev : events) {
      switch (ev.kind) {
        case Event::kReleased:
          held_.erase(ev.owner_token);
          break;
        case Event::kClosed:
          result.append(py::make_tuple(ev.conn_id, ev.peer, kClosedType, 0, 0, ev.reason));
          break;
        case Event::kFrame: {
          const FrameHeader h = ev.frame.header;
          result.append(py::make_tuple(ev.conn_id, ev.peer, h.type, h.request_id, h.flags,
                                       ToArray(std::move(ev.frame.payload), node_->pool())));
          break;
        }
      }
    }
    return result;
  }

  // Loads `tls` with the GIL released (PKCS#12 key derivation, file reads), then swaps it in for
  // new connections; a NetError from loading leaves the node's current material untouched.
  void ReloadTls(const TlsOptions& tls) {
    if (!node_) throw NetError("node is closed");
    TlsOptions copy(tls);  // wiped by TlsContext
    Node* node = node_.get();  // a concurrent close() parks it, never frees it while we run
    py::gil_scoped_release nogil;
    node->ReloadTls(std::make_shared<TlsContext>(std::move(copy)));
  }

  size_t HeldCount() const { return held_.size(); }

  void Close() { Shutdown(/*release_gil=*/true); }

  void Shutdown(bool release_gil) {
    if (!node_) return;
    if (release_gil) {
      py::gil_scoped_release nogil;
      node_->Close();
    } else {
      node_->Close();
    }
    held_.clear();  // the thread is gone: nothing borrows these any more
    // Keep the eventfd open (owned by node_) until the object dies: an event loop may still
    // have it registered, and a reused fd number would confuse its selector.
    parked_ = std::move(node_);
  }

  static void CloseAll() {
    std::vector<PyNode*> nodes(LiveNodes().begin(), LiveNodes().end());
    for (PyNode* n : nodes) n->Shutdown(false);
  }

 private:
  std::unique_ptr<Node> node_;
  std::unique_ptr<Node> parked_;  // closed, kept for its wake fd
  uint64_t next_token_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<HeldBuffer>> held_;
};

py::bytes EncodeFrame(int type, uint64_t request_id, int flags, const py::object& payload) {
  HeldBuffer held(payload);
  FrameHeader h;
  h.type = CheckU16(type, "type");
  h.flags = CheckU16(flags, "flags");
  h.request_id = request_id;
  h.payload_len = held.size();
  std::string out(net::kHeaderBytes + held.size(), '\0');
  net::EncodeHeader(h, reinterpret_cast<uint8_t*>(out.data()));
  if (held.size() > 0) std::memcpy(out.data() + net::kHeaderBytes, held.data(), held.size());
  return py::bytes(out);
}

class PyFrameDecoder {
 public:
  explicit PyFrameDecoder(uint64_t max_frame_bytes) : decoder_(max_frame_bytes) {}
  py::list Feed(const py::object& data) {
    HeldBuffer held(data);
    decoder_.Feed(held.data(), held.size());
    py::list frames;
    while (decoder_.HasFrame()) {
      net::Frame f = decoder_.TakeFrame();
      frames.append(py::make_tuple(f.header.type, f.header.request_id, f.header.flags,
                                   py::bytes(reinterpret_cast<const char*>(f.payload.data()),
                                             f.payload.size())));
    }
    return frames;
  }
  bool MidFrame() const { return decoder_.MidFrame(); }

 private:
  net::FrameDecoder decoder_;
};

}  // namespace

void BindNet(py::module_ m) {
  m.attr("HEADER_BYTES") = net::kHeaderBytes;
  m.attr("FLAG_RESPONSE") = net::kFlagResponse;
  m.attr("FLAG_ERROR") = net::kFlagError;
  m.attr("CLOSED") = kClosedType;

  py::class_<TlsOptions>(m, "TlsOptions",
                         "Mutual-TLS material of a Node: PKCS#12 files with their passwords, the CA "
                         "and CRL PEM files, the TLS 1.2 cipher list. Read when the Node is made (or by "
                         "Node.reload_tls).")
      .def(py::init([](std::string server_cert_path, std::string server_password,
                       std::string client_cert_path, std::string client_password,
                       std::string ca_cert_path, std::string crl_path, std::string cipher_list) {
             return TlsOptions{std::move(server_cert_path), std::move(server_password),
                               std::move(client_cert_path), std::move(client_password),
                               std::move(ca_cert_path), std::move(crl_path), std::move(cipher_list)};
           }),
           py::kw_only(), py::arg("server_cert_path"), py::arg("server_password"),
           py::arg("client_cert_path"), py::arg("client_password"), py::arg("ca_cert_path"),
           py::arg("crl_path") = "", py::arg("cipher_list") = "")
      .def_readonly("server_cert_path", &TlsOptions::server_cert_path)
      .def_readonly("client_cert_path", &TlsOptions::client_cert_path)
      .def_readonly("ca_cert_path", &TlsOptions::ca_cert_path)
      .def_readonly("crl_path", &TlsOptions::crl_path)
      .def_readonly("cipher_list", &TlsOptions::cipher_list)
      .def("__repr__", [](const TlsOptions& o) {  // never the passwords
        return "TlsOptions(server_cert_path='" + o.server_cert_path + "', client_cert_path='" +
               o.client_cert_path + "', ca_cert_path='" + o.ca_cert_path + "', crl_path='" +
               o.crl_path + "', passwords=***)";
      });

  py::class_<PyNode>(m, "Node",
                     "A TCP node with its own I/O thread: listens on host:port and connects to "
                     "peers on demand. See mindfed.net.TcpEndpoint for the asyncio face.")
      .def(py::init<const std::string&, int, size_t, uint64_t, size_t, const TlsOptions*>(),
           py::arg("host"), py::arg("port") = 0, py::arg("max_connections") = 10000,
           py::arg("max_frame_bytes") = uint64_t{1} << 34,
           py::arg("buffer_cache_bytes") = size_t{1} << 31, py::arg("tls") = nullptr,
           "Binds and listens (port 0: a free one); NetworkError if it cannot, or if the TLS "
           "material cannot be loaded. With tls every connection is mutual TLS. Payload arrays "
           "that Python frees go back to a cache (at most buffer_cache_bytes) for reuse by the "
           "next frame of the same size.")
      .def("port", &PyNode::Port, "The port actually listened on.")
      .def("wake_fd", &PyNode::WakeFd, "An eventfd, readable while take_ready() has something.")
      .def("take_ready", &PyNode::TakeReady,
           "Every waiting event, non-blocking: (conn_id, peer, type, request_id, flags, payload); "
           "payload is a writable uint8 array owning the received bytes. A closed connection "
           "gives type == CLOSED and payload = the reason (str).")
      .def("send", &PyNode::Send, py::arg("peer"), py::arg("type"), py::arg("request_id"),
           py::arg("flags"), py::arg("payload"),
           "Queues one frame to peer ('ip:port', connecting if needed, or a conn_id from "
           "take_ready) and returns the connection id. payload: any C-contiguous buffer; from "
           "64 KiB up it is sent in place and must not change until the write is done.")
      .def("reload_tls", &PyNode::ReloadTls, py::arg("tls"),
           "Loads new TLS material and uses it for connections accepted or opened from now on; open "
           "connections and frames in flight keep theirs. NetworkError (and the current material "
           "stays) if it cannot be loaded, or if the node was made without tls.")
      .def("close", &PyNode::Close, "Stops and joins the I/O thread, closes every socket. Idempotent.")
      .def("_held_count", &PyNode::HeldCount, "Borrowed payloads not yet released; for tests.");

  py::class_<PyFrameDecoder>(m, "FrameDecoder", "Incremental frame decoder (tests, tools).")
      .def(py::init<uint64_t>(), py::arg("max_frame_bytes"))
      .def("feed", &PyFrameDecoder::Feed, py::arg("data"),
           "Adds bytes; returns the frames now complete as (type, request_id, flags, payload). "
           "ProtocolError on a bad magic or oversize payload.")
      .def_property_readonly("mid_frame", &PyFrameDecoder::MidFrame);
  m.def("encode_frame", &EncodeFrame, py::arg("type"), py::arg("request_id"), py::arg("flags"),
        py::arg("payload"), "Header + payload as bytes (tests, tools).");

  py::module_::import("atexit").attr("register")(py::cpp_function(&PyNode::CloseAll));
}

}  // namespace mindfed::bindings
