#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

namespace ocm {

// A well-mixed 64-bit seed from a list of integers (splitmix64 chained over them). Every random
// stream in ocm is keyed this way, by what it is for, never by rank or batch position.
uint64_t derive_seed(std::initializer_list<uint64_t> parts);

// What a derived seed is for: the first part of every derive_seed key, so streams never collide.
enum class RandomPurpose : uint64_t {
  kSampling = 1,
  kTraining = 2,
  kLikelihood = 3,
  kStatistics = 4,
  kDataOrder = 5,
  kAugmentation = 6,
  kInitialization = 7,
};

// xoshiro256** seeded through splitmix64: small, fast, and the same bytes on every platform.
class RandomStream {
 public:
  explicit RandomStream(uint64_t seed);
  uint64_t next();
  double uniform();                // [0, 1) with 53 random bits
  uint64_t below(uint64_t bound);  // uniform in [0, bound), bound > 0, without modulo bias

 private:
  std::array<uint64_t, 4> state_;
};

}  // namespace ocm
