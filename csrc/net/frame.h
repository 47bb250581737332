// Length-prefixed frames of the node-to-node transport, and an incremental decoder.
//
// Wire layout, all little-endian, 24-byte header then payload_len payload bytes:
//   offset 0  magic       u32  kFrameMagic ("MFD1" read as bytes 'M','F','D','1')
//   offset 4  type        u16  message type, chosen by the protocol layer
//   offset 6  flags       u16  kFlagResponse, kFlagError, rest reserved (sent as 0)
//   offset 8  request_id  u64  pairs a response with its request
//   offset 16 payload_len u64  bytes that follow; at most the decoder's max_payload_bytes
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "net/buffer.h"

namespace mindfed::net {

inline constexpr uint32_t kFrameMagic = 0x3144464Du;  // bytes "MFD1"
inline constexpr size_t kHeaderBytes = 24;
inline constexpr uint16_t kFlagResponse = 1;  // the frame answers request_id
inline constexpr uint16_t kFlagError = 2;     // with kFlagResponse: payload is a UTF-8 reason

struct FrameHeader {
  uint32_t magic = kFrameMagic;
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t request_id = 0;
  uint64_t payload_len = 0;
};

struct Frame {
  FrameHeader header;
  PayloadBuffer payload;  // exactly header.payload_len bytes
};

// Writes h into out[0..kHeaderBytes) in wire order.
void EncodeHeader(const FrameHeader& h, uint8_t* out);
// Reads a header from in[0..kHeaderBytes); does not validate it.
FrameHeader DecodeHeader(const uint8_t* in);

// Turns a byte stream, arriving in pieces of any size, into whole frames.
//
// Receive loop: `auto [p, n] = d.WriteSpace(); got = recv(fd, p, n); d.Commit(got);` then
// `TakeFrame()` while `HasFrame()`. Headers and small payloads go through a 64 KiB staging
// buffer; once the header of a large frame is parsed, WriteSpace() points straight into that
// frame's PayloadBuffer, so a 1 GiB payload is received in place with no further copy.
// Commit() throws ProtocolError on a bad magic or a payload_len above max_payload_bytes; the
// decoder is then unusable (the connection must be closed). Not thread-safe.
class FrameDecoder {
 public:
  // pool (optional) supplies the payload buffers, recycling those the user gave back.
  explicit FrameDecoder(uint64_t max_payload_bytes, std::shared_ptr<BufferPool> pool = nullptr);
  FrameDecoder(const FrameDecoder&) = delete;  // owns a partly received payload
  FrameDecoder& operator=(const FrameDecoder&) = delete;
  FrameDecoder(FrameDecoder&&) = default;
  FrameDecoder& operator=(FrameDecoder&&) = default;

  // Where the next received bytes go, and at most how many; size is never 0.
  std::pair<uint8_t*, size_t> WriteSpace();
  // Records that n bytes were written at the last WriteSpace(); parses what is complete.
  void Commit(size_t n);
  // Copies data through WriteSpace()/Commit(); for tests and callers that already hold bytes.
  void Feed(const uint8_t* data, size_t n);

  bool HasFrame() const { return !ready_.empty(); }
  Frame TakeFrame();
  // True while part of a frame (header or payload) has arrived but not all of it.
  bool MidFrame() const { return have_header_ || staged_end_ > staged_begin_; }

 private:
  void Parse();
  uint64_t max_payload_bytes_;
  std::shared_ptr<BufferPool> pool_;
  std::vector<uint8_t> staging_;
  size_t staged_begin_ = 0, staged_end_ = 0;
  bool have_header_ = false;
  bool direct_ = false;  // the last WriteSpace() pointed into current_.payload
  Frame current_;
  size_t filled_ = 0;  // payload bytes of current_ received so far
  std::deque<Frame> ready_;
};

}  // namespace mindfed::net
