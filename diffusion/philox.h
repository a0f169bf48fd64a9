// Philox-4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011) and the transforms ocm draws with it. Plain functions of (key, counter) with no
// state, compiled for the host and, in a CUDA build, for the device from this one header, so a
// kernel and a CPU loop compute the same words. See Note [counter-based draws] in random.h.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define OCM_HOST_DEVICE __host__ __device__
#else
#define OCM_HOST_DEVICE
#endif

namespace ocm::philox {

struct Block {
  uint32_t word[4];
};

// The 128-bit counter of Random123's reference, rounds keyed by (key0, key1).
OCM_HOST_DEVICE inline Block philox4x32_10(Block counter, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += 0x9E3779B9u;  // the Weyl sequence's increments: golden ratio and sqrt(3) - 1
      key1 += 0xBB67AE85u;
    }
    const uint64_t product0 = static_cast<uint64_t>(0xD2511F53u) * counter.word[0];
    const uint64_t product1 = static_cast<uint64_t>(0xCD9E8D57u) * counter.word[2];
    const auto hi0 = static_cast<uint32_t>(product0 >> 32);
    const auto hi1 = static_cast<uint32_t>(product1 >> 32);
    counter = {{hi1 ^ counter.word[1] ^ key0, static_cast<uint32_t>(product1),
                hi0 ^ counter.word[3] ^ key1, static_cast<uint32_t>(product0)}};
  }
  return counter;
}

// One sample's draw: the key comes from (purpose, run seed, draw number), the counter from
// (block, sample index, extra), so every element of every sample has its own 128 bits.
struct SampleKey {
  uint32_t key0;
  uint32_t key1;
  uint64_t index;  // the sample's global index
  uint32_t extra;  // the training step, or the sampler's step; below 2^32
};

OCM_HOST_DEVICE inline Block block_of(const SampleKey& s, uint64_t block) {
  return philox4x32_10({{static_cast<uint32_t>(block), static_cast<uint32_t>(s.index),
                         static_cast<uint32_t>(s.index >> 32), s.extra}},
                       s.key0, s.key1);
}

// Element e of a standard normal draw: Box-Muller in double on the pair e / 2, whose two 32-bit
// uniforms are words 2(p mod 2) and 2(p mod 2) + 1 of block p / 2. u1 lies in (0, 1], so the
// logarithm is finite and |z| stays below sqrt(2 ln 2^32) = 6.66.
OCM_HOST_DEVICE inline double normal_from(const Block& b, uint64_t e) {
  const uint64_t pair = e >> 1;
  const uint32_t first = b.word[2 * (pair & 1)];
  const uint32_t second = b.word[2 * (pair & 1) + 1];
  const double u1 = (static_cast<double>(first) + 1.0) * 0x1.0p-32;
  const double u2 = static_cast<double>(second) * 0x1.0p-32;
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586 * u2;
  return (e & 1) != 0 ? radius * sin(angle) : radius * cos(angle);
}

// Element e of a +-1 draw: bit e mod 32 of word (e / 32) mod 4 of block e / 128.
OCM_HOST_DEVICE inline double rademacher_from(const Block& b, uint64_t e) {
  return ((b.word[(e >> 5) & 3] >> (e & 31)) & 1u) != 0 ? 1.0 : -1.0;
}

// Element e of a uniform draw in [0, 1) with 53 random bits: words 2(e mod 2), 2(e mod 2) + 1
// of block e / 2.
OCM_HOST_DEVICE inline double uniform_from(const Block& b, uint64_t e) {
  const uint64_t bits =
      (static_cast<uint64_t>(b.word[2 * (e & 1)]) << 32) | b.word[2 * (e & 1) + 1];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// One integer uniform in [0, range), range > 0: the high half of a 64-bit word times the range
// (Lemire's multiply-shift). Its bias is below range / 2^64: at most 1e-16 for 1000 timesteps.
OCM_HOST_DEVICE inline uint64_t below(const SampleKey& s, uint64_t range) {
  const Block b = block_of(s, 0);
  const uint64_t bits = (static_cast<uint64_t>(b.word[0]) << 32) | b.word[1];
#if defined(__CUDA_ARCH__)
  return __umul64hi(bits, range);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * range) >> 64);
#endif
}

enum class Transform { kNormal, kRademacher, kUniform };

// How many elements of a draw share one block: a kernel computes the block per element, a CPU
// loop once per run of elements.
OCM_HOST_DEVICE inline int elements_per_block(Transform transform) {
  return transform == Transform::kNormal ? 4 : transform == Transform::kRademacher ? 128 : 2;
}

// Element e of a draw of `transform`, from its block (block_of(s, e / elements_per_block)):
// what both the CUDA kernel and the CPU loop store.
OCM_HOST_DEVICE inline double value_from(Transform transform, const Block& b, uint64_t e) {
  switch (transform) {
    case Transform::kNormal:
      return normal_from(b, e);
    case Transform::kRademacher:
      return rademacher_from(b, e);
    default:
      return uniform_from(b, e);
  }
}

}  // namespace ocm::philox
