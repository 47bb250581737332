#include "net/buffer.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <utility>

namespace mindfed::net {
namespace {
constexpr size_t kMapThresholdBytes = size_t{2} << 20;
}  // namespace

PayloadBuffer::PayloadBuffer(size_t size_bytes) : size_(size_bytes) {
  if (size_bytes == 0) return;
  if (size_bytes >= kMapThresholdBytes) {
    void* p = mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, size_bytes, MADV_HUGEPAGE);  // a hint: failure only costs page faults
    data_ = static_cast<uint8_t*>(p);
    mapped_ = true;
    return;
  }
  data_ = static_cast<uint8_t*>(std::malloc(size_bytes));
  if (data_ == nullptr) throw std::bad_alloc();
}

PayloadBuffer::~PayloadBuffer() { Free(); }

PayloadBuffer::PayloadBuffer(PayloadBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)) {}

PayloadBuffer& PayloadBuffer::operator=(PayloadBuffer&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

void PayloadBuffer::Free() {
  if (data_ == nullptr) return;
  if (mapped_) {
    munmap(data_, size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
}

PayloadBuffer BufferPool::Get(size_t size_bytes) {
  if (size_bytes >= min_buffer_bytes_) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = cached_.size(); i-- > 0;) {
      if (cached_[i].size() != size_bytes) continue;
      PayloadBuffer found = std::move(cached_[i]);
      cached_.erase(cached_.begin() + static_cast<std::ptrdiff_t>(i));
      cached_bytes_ -= size_bytes;
      return found;
    }
  }
  return PayloadBuffer(size_bytes);
}

void BufferPool::Put(PayloadBuffer&& buffer) {
  PayloadBuffer dropped;  // freed outside the lock (munmap of a GiB is not instant)
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffer.size() < min_buffer_bytes_ || cached_bytes_ + buffer.size() > max_cached_bytes_) {
      dropped = std::move(buffer);
    } else {
      cached_bytes_ += buffer.size();
      cached_.push_back(std::move(buffer));
    }
  }
}

size_t BufferPool::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_bytes_;
}

}  // namespace mindfed::net
