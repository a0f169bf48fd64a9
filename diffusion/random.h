#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "common/seeding.h"

namespace ocm::diffusion {

// Note [per-sample randomness]
// Every random draw that belongs to one sample (its starting noise, each step's noise, its
// timestep, each probe) comes from that sample's own stream, seeded from the run seed, a
// purpose, and the sample's global index (plus the step, in training). The draws of sample i
// are therefore the same whatever the batch size, the number of ranks, or which rank made it.
// The streams are our own (RandomStream; Box-Muller normals computed in double on the CPU, then
// cast and moved), so they are also the same on any device and any LibTorch version, and cost
// nanoseconds per number rather than a tensor call per sample.

// `cpu` on options' device and dtype. On CUDA the copy goes through pinned memory and does not
// block the host, so drawing a step's randomness adds no host synchronisation to the step.
torch::Tensor to_device_nonblocking(const torch::Tensor& cpu, const torch::TensorOptions& options);

class SampleRandom {
 public:
  // One stream per sample index, seeded with derive_seed({purpose, seed, extra, index}).
  SampleRandom(uint64_t seed, RandomPurpose purpose, const std::vector<int64_t>& indices,
               uint64_t extra = 0);

  int64_t batch_size() const { return static_cast<int64_t>(streams_.size()); }

  // [B, sample_shape...] standard normal draws.
  torch::Tensor normal(at::IntArrayRef sample_shape, const torch::TensorOptions& options);
  // [B, sample_shape...] entries +1 or -1 with equal probability.
  torch::Tensor rademacher(at::IntArrayRef sample_shape, const torch::TensorOptions& options);
  // [B] integers uniform in [low, high).
  torch::Tensor integers(int64_t low, int64_t high);
  // [B, sample_shape...] uniform in [0, 1).
  torch::Tensor uniform(at::IntArrayRef sample_shape, const torch::TensorOptions& options);

 private:
  template <class Fill>
  torch::Tensor draw(at::IntArrayRef sample_shape, const torch::TensorOptions& options, Fill fill);

  std::vector<RandomStream> streams_;
};

}  // namespace ocm::diffusion
