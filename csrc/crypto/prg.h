// MindSpore's mask PRG (masking.cc::GetMasking, Masking.java::getMasking): the AES-256-CTR
// keystream of (key, iv) over 4·n zero bytes, read as n little-endian int32 words v, and
// value = (float)v / (float)INT32_MAX in float32. (float)INT32_MAX rounds to 2^31, so the
// division is the exact scaling v·2^-31 and values lie in [-1, 1). Java aborts on a word
// equal to -1 (probability 2^-32 per value); we, like MindSpore's server, use it.
//
// FoldKeystream is the inner loop of the masking: dst[i] += coeff · value_i, rounded as
// float32 after the product and after the sum (this file is built without FMA contraction, so
// results are bit-identical to numpy's float32 arithmetic on every CPU).
// Thread-safe: no state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mindfed::crypto {

// Keystream chunk for folding: 16 KiB (4096 values) keeps the keystream and the destination
// slice in L1 while AES runs at full speed; a multiple of the 16-byte AES block.
constexpr size_t kMaskChunkValues = 4096;
constexpr size_t kMaskChunkBytes = 4 * kMaskChunkValues;

// The value of one keystream word (4 little-endian bytes).
float MaskValue(const uint8_t word[4]);

// dst[i] += coeff * MaskValue(keystream + 4i) for i < n.
void FoldKeystream(const uint8_t* keystream, float coeff, float* dst, size_t n);

// Ring folding (secure compressed uploads): dst[i] += word_i (subtract: dst[i] -= word_i) mod 2^32,
// word_i the little-endian uint32 at keystream + 4i, for i < n.
void FoldRingKeystream(const uint8_t* keystream, bool subtract, uint32_t* dst, size_t n);

// out[i] = MaskValue(word i of the keystream of (key, iv)) for i < n. CryptoError if
// libcrypto fails.
void MaskValues(const uint8_t key[32], const uint8_t iv[16], float* out, size_t n);

// kMaskChunkBytes zero bytes: the plaintext whose CTR encryption is the keystream.
const uint8_t* ZeroChunk();

}  // namespace mindfed::crypto
