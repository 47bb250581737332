// AddMasks: PW_ENCRYPT's masking and unmasking in one multi-threaded pass.
//
// For every target array a and every i < a.size:
//   a[i] += Σ_pairs coeff·PRG(PBKDF2_SHA256(X25519(private, peer_public), salt, 10000, 32), iv)[i]
//         + Σ_seeds coeff·PRG(key, iv)[i]
// with PRG as in prg.h, every array from PRG offset 0 (MindSpore's Java client masks each
// tensor from offset 0). The terms are folded into a[i] one at a time in float32: pairs in
// the order given, then seeds in the order given, so starting from a zero array one call
// reproduces the Java client's mask (pairwise parts first, its own PRG(b_u) last). The result
// does not depend on the thread count.
//
// How: the pair keys are derived first, threads taking pairs from a shared counter (PBKDF2 is
// the cost: 10000 iterations each). Then the index range [0, max size) is split into one
// contiguous, block-aligned slice per thread; each thread starts one CTR stream per key at its
// slice (AES-CTR seeks: counter = IV + block offset) and walks the slice in kMaskChunkValues
// chunks, expanding each key's 16 KiB keystream chunk in L1 and folding it into every array
// at once. Memory: one chunk buffer and one cipher context per key per thread; nothing
// proportional to the array sizes.
//
// Contract: targets must not overlap (the caller checks); nothing else may touch them during
// the call. Throws CryptoError for a low-order peer public key or a libcrypto failure (the
// targets are then partly masked and must be discarded), std::system_error if threads cannot
// start. Derived keys and shared secrets are wiped before returning. Thread-safe for disjoint
// targets.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "crypto/secret.h"
#include "crypto/x25519.h"

namespace mindfed::crypto {

struct MaskTarget {
  float* data;
  size_t size;
};

struct SeedMask {
  Key32 key;
  std::array<uint8_t, kAesBlockBytes> iv;
  float coeff;
};

struct PairMask {
  Key32 private_key;
  PublicKey peer_public;
  std::vector<uint8_t> salt;
  std::array<uint8_t, kAesBlockBytes> iv;
  float coeff;
};

// threads == 0: std::thread::hardware_concurrency(). Fewer threads are used when there is
// less work than threads (at least one chunk of values, or one pair, per thread).
void AddMasks(const std::vector<MaskTarget>& targets, const std::vector<SeedMask>& seeds,
              const std::vector<PairMask>& pairs, unsigned threads);

// AddRingMasks: the same masks in the ring Z/2^32 (secure compressed uploads, docs/compression.md).
//
// For i < n: data[i] += Σ_pairs sgn·PRG32(pair key, iv)[i] + Σ_seeds sgn·PRG32(key, iv)[i] mod 2^32,
// where PRG32 reads the keystream words of AddMasks' PRG (same keys: X25519 + PBKDF2 as above, same
// IVs, from offset 0) as little-endian uint32, and sgn is +1 for coeff > 0 and -1 (two's complement
// subtraction) for coeff < 0; a coeff of 0 is refused (std::invalid_argument). Ring addition is
// associative and commutative, so the result is exact and independent of order and thread count.
// Same threading, memory and error contract as AddMasks.
void AddRingMasks(uint32_t* data, size_t n, const std::vector<SeedMask>& seeds,
                  const std::vector<PairMask>& pairs, unsigned threads);

// The AES key of one pair: PBKDF2_SHA256(X25519(private, peer_public), salt, 10000, 32).
Key32 DerivePairKey(const PairMask& pair);

}  // namespace mindfed::crypto
