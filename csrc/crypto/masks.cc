#include "crypto/masks.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "crypto/aes.h"
#include "crypto/kdf.h"
#include "crypto/prg.h"

namespace mindfed::crypto {
namespace {

// One key of the expansion: where its keystream starts and its weight.
struct StreamKey {
  const uint8_t* key;
  const uint8_t* iv;
  float coeff;
};

// Runs body(t) for t < n on n threads (the caller's thread is one of them) and rethrows the
// first exception any of them threw.
template <typename Body>
void RunThreads(unsigned n, const Body& body) {
  std::exception_ptr error;
  std::mutex error_mutex;
  auto guarded = [&](unsigned t) {
    try {
      body(t);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(n > 0 ? n - 1 : 0);
  try {
    for (unsigned t = 1; t < n; ++t) pool.emplace_back(guarded, t);
  } catch (...) {
    for (auto& th : pool) th.join();
    throw;
  }
  guarded(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

void DeriveAll(const std::vector<PairMask>& pairs, unsigned threads, std::vector<Key32>* keys) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  const unsigned n = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(pairs.size())));
  RunThreads(n, [&](unsigned) {
    try {
      while (!failed.load(std::memory_order_relaxed)) {
        const size_t j = next++;
        if (j >= pairs.size()) break;
        (*keys)[j] = DerivePairKey(pairs[j]);
      }
    } catch (...) {
      failed = true;
      throw;
    }
  });
}

// Every stream of one masking: the pairs' derived keys (into *pair_keys, which must outlive the
// result: the StreamKeys point into it) in the order given, then the seeds. Adding terms in this
// order reproduces the Java client's mask (pairs first, its own PRG(b_u) last).
std::vector<StreamKey> StreamKeys(const std::vector<SeedMask>& seeds, const std::vector<PairMask>& pairs,
                                  unsigned threads, std::vector<Key32>* pair_keys) {
  pair_keys->resize(pairs.size());
  DeriveAll(pairs, threads, pair_keys);
  std::vector<StreamKey> keys;
  keys.reserve(pairs.size() + seeds.size());
  for (size_t j = 0; j < pairs.size(); ++j) {
    keys.push_back({(*pair_keys)[j].data(), pairs[j].iv.data(), pairs[j].coeff});
  }
  for (const SeedMask& s : seeds) keys.push_back({s.key.data(), s.iv.data(), s.coeff});
  return keys;
}

// Runs slice(lo, hi) over [0, n) split among at most `threads` threads in whole chunks (so whole
// AES blocks: each slice starts at a block boundary and its streams can seek there).
template <typename Slice>
void ForEachSlice(size_t n, unsigned threads, const Slice& slice) {
  const size_t chunks = (n + kMaskChunkValues - 1) / kMaskChunkValues;
  const unsigned m = static_cast<unsigned>(std::min<size_t>(threads, chunks));
  RunThreads(m, [&](unsigned t) {
    const size_t lo = std::min(n, chunks * t / m * kMaskChunkValues);
    const size_t hi = std::min(n, chunks * (t + 1) / m * kMaskChunkValues);
    if (lo < hi) slice(lo, hi);
  });
}

// Runs every key's keystream over values [lo, hi), one chunk at a time, and hands each chunk to
// fold(key, keystream, at, end). One loop for both maskings: they differ only in how a chunk of
// keystream lands in the data (a float weight into targets, or +/- in the ring).
template <typename Fold>
void ExpandSlice(const std::vector<StreamKey>& keys, size_t lo, size_t hi, const Fold& fold) {
  std::vector<AesCtrStream> streams(keys.size());
  for (size_t k = 0; k < keys.size(); ++k) streams[k].Start(keys[k].key, keys[k].iv, lo / 4);
  alignas(64) uint8_t ks[kMaskChunkBytes];
  const uint8_t* zeros = ZeroChunk();
  for (size_t at = lo; at < hi; at += kMaskChunkValues) {
    const size_t end = std::min(hi, at + kMaskChunkValues);
    for (size_t k = 0; k < keys.size(); ++k) {
      streams[k].Apply(zeros, ks, 4 * (end - at));
      fold(keys[k], ks, at, end);
    }
  }
  OPENSSL_cleanse(ks, sizeof ks);
}

}  // namespace

void AddRingMasks(uint32_t* data, size_t n, const std::vector<SeedMask>& seeds,
                  const std::vector<PairMask>& pairs, unsigned threads) {
  for (const SeedMask& s : seeds) {
    if (!(s.coeff > 0 || s.coeff < 0)) throw std::invalid_argument("a ring seed coeff must be +1 or -1");
  }
  for (const PairMask& p : pairs) {
    if (!(p.coeff > 0 || p.coeff < 0)) throw std::invalid_argument("a ring pair coeff must be +1 or -1");
  }
  if (n == 0 || (seeds.empty() && pairs.empty())) return;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());

  std::vector<Key32> pair_keys;  // wiped by ~Key32
  const std::vector<StreamKey> keys = StreamKeys(seeds, pairs, threads, &pair_keys);
  ForEachSlice(n, threads, [&](size_t lo, size_t hi) {
    ExpandSlice(keys, lo, hi, [&](const StreamKey& key, const uint8_t* ks, size_t at, size_t end) {
      FoldRingKeystream(ks, key.coeff < 0, data + at, end - at);
    });
  });
}

Key32 DerivePairKey(const PairMask& pair) {
  const Key32 shared = X25519Shared(pair.private_key, pair.peer_public);
  Key32 key;
  Pbkdf2Sha256(shared.data(), shared.size(), pair.salt.data(), pair.salt.size(),
               kPwPbkdf2Iterations, key.data(), key.size());
  return key;
}

void AddMasks(const std::vector<MaskTarget>& targets, const std::vector<SeedMask>& seeds,
              const std::vector<PairMask>& pairs, unsigned threads) {
  size_t max_size = 0;
  for (const MaskTarget& t : targets) max_size = std::max(max_size, t.size);
  if (max_size == 0 || (seeds.empty() && pairs.empty())) return;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());

  std::vector<Key32> pair_keys;  // wiped by ~Key32
  const std::vector<StreamKey> keys = StreamKeys(seeds, pairs, threads, &pair_keys);
  ForEachSlice(max_size, threads, [&](size_t lo, size_t hi) {
    ExpandSlice(keys, lo, hi, [&](const StreamKey& key, const uint8_t* ks, size_t at, size_t end) {
      for (const MaskTarget& t : targets) {
        if (t.size > at) FoldKeystream(ks, key.coeff, t.data + at, std::min(end, t.size) - at);
      }
    });
  });
}

}  // namespace mindfed::crypto
