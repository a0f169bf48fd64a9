#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace ocm::diffusion {

// Note [per-sample randomness]
// Every random draw that belongs to one sample (its starting noise, each step's noise, its
// timestep, each probe) comes from that sample's own generator, seeded from the run seed, a
// purpose, and the sample's global index (plus the step, in training). The draws of sample i
// are therefore the same whatever the batch size, the number of ranks, or which rank made it.
// Draws happen on the CPU in float32 and are then moved, so they are also the same on any
// device.

// A well-mixed 64-bit seed from a list of integers (splitmix64 chained over them).
uint64_t derive_seed(std::initializer_list<uint64_t> parts);

enum class RandomPurpose : uint64_t {
  kSampling = 1,
  kTraining = 2,
  kLikelihood = 3,
  kStatistics = 4
};

class SampleRandom {
 public:
  // One generator per sample index, seeded with derive_seed({seed, purpose, extra..., index}).
  SampleRandom(uint64_t seed, RandomPurpose purpose, const std::vector<int64_t>& indices,
               uint64_t extra = 0);

  int64_t batch_size() const { return static_cast<int64_t>(generators_.size()); }

  // [B, sample_shape...] standard normal draws.
  torch::Tensor normal(at::IntArrayRef sample_shape, const torch::TensorOptions& options);
  // [B, sample_shape...] entries +1 or -1 with equal probability.
  torch::Tensor rademacher(at::IntArrayRef sample_shape, const torch::TensorOptions& options);
  // [B] integers uniform in [low, high).
  torch::Tensor integers(int64_t low, int64_t high);
  // [B, sample_shape...] uniform in [0, 1).
  torch::Tensor uniform(at::IntArrayRef sample_shape, const torch::TensorOptions& options);

 private:
  std::vector<at::Generator> generators_;
};

}  // namespace ocm::diffusion
