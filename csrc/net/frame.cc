#include "net/frame.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "common/errors.h"

namespace mindfed::net {
namespace {

constexpr size_t kStagingBytes = 64 * 1024;

template <typename T>
void PutLe(uint8_t* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

template <typename T>
T GetLe(const uint8_t* in) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(in[i]) << (8 * i);
  return v;
}

}  // namespace

void EncodeHeader(const FrameHeader& h, uint8_t* out) {
  PutLe<uint32_t>(out, h.magic);
  PutLe<uint16_t>(out + 4, h.type);
  PutLe<uint16_t>(out + 6, h.flags);
  PutLe<uint64_t>(out + 8, h.request_id);
  PutLe<uint64_t>(out + 16, h.payload_len);
}

FrameHeader DecodeHeader(const uint8_t* in) {
  FrameHeader h;
  h.magic = GetLe<uint32_t>(in);
  h.type = GetLe<uint16_t>(in + 4);
  h.flags = GetLe<uint16_t>(in + 6);
  h.request_id = GetLe<uint64_t>(in + 8);
  h.payload_len = GetLe<uint64_t>(in + 16);
  return h;
}

FrameDecoder::FrameDecoder(uint64_t max_payload_bytes, std::shared_ptr<BufferPool> pool)
    : max_payload_bytes_(max_payload_bytes), pool_(std::move(pool)), staging_(kStagingBytes) {}

std::pair<uint8_t*, size_t> FrameDecoder::WriteSpace() {
  // Parse() leaves staging empty whenever a payload is incomplete, so receiving the rest of
  // a large payload in place never skips staged bytes.
  const size_t remaining = have_header_ ? current_.payload.size() - filled_ : 0;
  direct_ = have_header_ && remaining >= kStagingBytes / 2;
  if (direct_) return {current_.payload.data() + filled_, remaining};
  if (staged_begin_ == staged_end_) {
    staged_begin_ = staged_end_ = 0;
  } else if (staging_.size() - staged_end_ < kHeaderBytes) {
    std::memmove(staging_.data(), staging_.data() + staged_begin_, staged_end_ - staged_begin_);
    staged_end_ -= staged_begin_;
    staged_begin_ = 0;
  }
  return {staging_.data() + staged_end_, staging_.size() - staged_end_};
}

void FrameDecoder::Commit(size_t n) {
  if (direct_) {
    filled_ += n;
    if (filled_ == current_.payload.size()) {
      ready_.push_back(std::move(current_));
      current_ = Frame{};
      have_header_ = false;
      filled_ = 0;
    }
  } else {
    staged_end_ += n;
  }
  direct_ = false;
  Parse();
}

void FrameDecoder::Feed(const uint8_t* data, size_t n) {
  while (n > 0) {
    auto [dst, room] = WriteSpace();
    const size_t take = n < room ? n : room;
    std::memcpy(dst, data, take);
    Commit(take);
    data += take;
    n -= take;
  }
}

void FrameDecoder::Parse() {
  for (;;) {
    size_t staged = staged_end_ - staged_begin_;
    if (!have_header_) {
      if (staged < kHeaderBytes) return;
      FrameHeader h = DecodeHeader(staging_.data() + staged_begin_);
      if (h.magic != kFrameMagic) {
        throw ProtocolError("bad frame magic 0x" + [&] {
          char buf[9];
          std::snprintf(buf, sizeof buf, "%08x", h.magic);
          return std::string(buf);
        }() + ", want 0x3144464d");
      }
      if (h.payload_len > max_payload_bytes_) {
        throw ProtocolError("frame payload of " + std::to_string(h.payload_len) +
                            " bytes exceeds the limit of " + std::to_string(max_payload_bytes_));
      }
      staged_begin_ += kHeaderBytes;
      staged -= kHeaderBytes;
      current_.header = h;
      const auto len = static_cast<size_t>(h.payload_len);
      current_.payload = pool_ ? pool_->Get(len) : PayloadBuffer(len);
      have_header_ = true;
      filled_ = 0;
    }
    const size_t want = current_.payload.size() - filled_;
    const size_t take = staged < want ? staged : want;
    if (take > 0) {
      std::memcpy(current_.payload.data() + filled_, staging_.data() + staged_begin_, take);
      filled_ += take;
      staged_begin_ += take;
    }
    if (filled_ < current_.payload.size()) return;  // staging is empty now
    ready_.push_back(std::move(current_));
    current_ = Frame{};
    have_header_ = false;
    filled_ = 0;
  }
}

Frame FrameDecoder::TakeFrame() {
  Frame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

}  // namespace mindfed::net
