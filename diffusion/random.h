#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "common/seeding.h"
#include "diffusion/philox.h"

namespace ocm::diffusion {

// Note [per-sample randomness]
// Every random draw that belongs to one sample (its starting noise, each step's noise, its
// timestep, each probe) is a function of the run seed, a purpose, the sample's global index
// (plus the step, in training) and the number of draws made before it for that sample. The
// draws of sample i are therefore the same whatever the batch size, the number of ranks, or
// which rank made it. Two generators compute them (Note [counter-based draws]).

// Note [counter-based draws]
// `stream` (ocm 0.2 and earlier) gives each sample a xoshiro256** stream on the host, draws in
// order, transforms in double and copies the batch to the device: a host loop and a copy per
// draw, which a GPU step cannot hide. `philox` makes each element a pure function of its
// coordinates: Philox-4x32-10 keyed by (purpose, seed, draw number), counting over (block of the
// element, sample index, step). A CUDA kernel fills the tensor where it lives, with no host
// work beyond the launch, and the CPU computes the same function in a loop (diffusion/philox.h
// holds it once for both), so CPU and GPU agree up to the last bits of log/sin/cos. A training
// run records its generator in every checkpoint, and a resumed run keeps the one it started
// with: checkpoints written before the choice existed resume with `stream`.
enum class Generator : int64_t { kStream = 1, kPhilox = 2 };

// "stream" or "philox", and back (std::invalid_argument for any other name).
std::string generator_name(Generator generator);
Generator generator_named(const std::string& name);

// `cpu` on options' device and dtype. On CUDA the copy goes through pinned memory and does not
// block the host, so drawing a step's randomness adds no host synchronisation to the step.
torch::Tensor to_device_nonblocking(const torch::Tensor& cpu, const torch::TensorOptions& options);

class SampleRandom {
 public:
  // The draws of samples `indices` for (seed, purpose, extra); extra must be below 2^32 with
  // `philox`.
  SampleRandom(uint64_t seed, RandomPurpose purpose, const std::vector<int64_t>& indices,
               uint64_t extra = 0, Generator generator = Generator::kStream);

  int64_t batch_size() const { return static_cast<int64_t>(indices_.size()); }

  // [B, sample_shape...] standard normal draws.
  torch::Tensor normal(at::IntArrayRef sample_shape, const torch::TensorOptions& options);
  // [B, sample_shape...] entries +1 or -1 with equal probability.
  torch::Tensor rademacher(at::IntArrayRef sample_shape, const torch::TensorOptions& options);
  // [B] integers uniform in [low, high), on `device`.
  torch::Tensor integers(int64_t low, int64_t high, const torch::Device& device = torch::kCPU);
  // [B, sample_shape...] uniform in [0, 1).
  torch::Tensor uniform(at::IntArrayRef sample_shape, const torch::TensorOptions& options);

 private:
  template <class Fill>
  torch::Tensor draw_stream(at::IntArrayRef sample_shape, const torch::TensorOptions& options,
                            Fill fill);
  torch::Tensor draw_philox(philox::Transform transform, at::IntArrayRef sample_shape,
                            const torch::TensorOptions& options);

  Generator generator_;
  uint64_t seed_;
  RandomPurpose purpose_;
  uint64_t extra_;
  std::vector<int64_t> indices_;
  uint64_t draws_ = 0;                 // philox: draws made so far, part of the next key
  std::vector<RandomStream> streams_;  // stream: one per sample
};

}  // namespace ocm::diffusion
