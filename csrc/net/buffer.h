// PayloadBuffer: one heap block that an inbound frame's payload is received into, then handed
// to Python without a copy (the binding moves it into a capsule owner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace mindfed::net {

// Uninitialised bytes of a fixed size. Blocks of 2 MiB and more come from mmap with
// MADV_HUGEPAGE, so filling a 1 GiB payload takes ~512 page faults instead of ~262k.
// Move-only: a copy of a 1 GiB payload must never happen by accident.
// Not thread-safe; owned by one thread at a time. Throws std::bad_alloc when memory runs out.
class PayloadBuffer {
 public:
  PayloadBuffer() = default;
  explicit PayloadBuffer(size_t size_bytes);
  ~PayloadBuffer();
  PayloadBuffer(const PayloadBuffer&) = delete;
  PayloadBuffer& operator=(const PayloadBuffer&) = delete;
  PayloadBuffer(PayloadBuffer&& other) noexcept;
  PayloadBuffer& operator=(PayloadBuffer&& other) noexcept;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void Free();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
};

// Keeps freed large PayloadBuffers for reuse by the next frame of the same size: a recycled
// buffer is already backed by memory, so receiving into it skips the page faults (measured at
// ~0.7 s per fresh GiB on the development VM). Federated updates are all the same size, so an
// exact-size match is the common case. Holds at most max_cached_bytes of idle memory, and only
// buffers of at least min_buffer_bytes. Thread-safe.
class BufferPool {
 public:
  BufferPool(size_t max_cached_bytes, size_t min_buffer_bytes = size_t{1} << 20)
      : max_cached_bytes_(max_cached_bytes), min_buffer_bytes_(min_buffer_bytes) {}
  BufferPool(const BufferPool&) = delete;  // owns the cached memory
  BufferPool& operator=(const BufferPool&) = delete;

  // A cached buffer of exactly size_bytes, else a new one (std::bad_alloc if memory runs out).
  PayloadBuffer Get(size_t size_bytes);
  // Takes a buffer back; frees it at once when it is small or the cache is full.
  void Put(PayloadBuffer&& buffer);
  size_t cached_bytes() const;

 private:
  const size_t max_cached_bytes_, min_buffer_bytes_;
  mutable std::mutex mu_;
  std::vector<PayloadBuffer> cached_;
  size_t cached_bytes_ = 0;
};

}  // namespace mindfed::net
