#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <torch/types.h>

#include "data/dataset.h"
#include "data/sampler.h"

namespace ocm::data {

struct LoaderOptions {
  std::string split = "train";
  int64_t start_step = 0;  // resume: the data position is the step count
  int rank = 0;
  int world = 1;
  int threads = 2;
  int queue_depth = 4;  // ready batches kept ahead of the trainer
  bool horizontal_flip = false;
  uint64_t seed = 0;
  // Page-locked host tensors, for asynchronous copies to a GPU; only when CUDA is available.
  bool pin_memory = true;
};

struct Batch {
  int64_t step = 0;
  torch::Tensor data;    // float32: images [b, C, H, W] in [-1, 1], arrays [b, ...] as stored
  torch::Tensor labels;  // int64 [b]; undefined for unlabelled data
  std::vector<int64_t> positions;  // stream positions: the samples' global indices
};

// uint8 images [B, H, W, C] -> float32 [B, C, H, W] in [-1, 1]: what the networks take.
torch::Tensor images_to_float(const torch::Tensor& images);

// The elements at `indices` of `split` as stored: uint8 [n, H, W, C] images or float32 arrays.
torch::Tensor read_elements(const Dataset& dataset, const std::string& split,
                            const std::vector<int64_t>& indices);

// The same elements as network input on `device`: images through images_to_float.
torch::Tensor read_model_input(const Dataset& dataset, const std::string& split,
                               const std::vector<int64_t>& indices, const torch::Device& device);

// Background threads read this rank's share of each step's global batch (Note
// [world-size-invariant data order]), convert it and hand it over in step order through a
// bounded queue. Flips are decided per sample from (seed, stream position), so they too are the
// same for any world size.
class Loader {
 public:
  Loader(const Dataset& dataset, const GlobalBatchSampler& sampler, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The batch of the next step; blocks until it is ready. Rethrows a worker's error.
  Batch next();

  // Seconds next() has spent waiting for data so far.
  double wait_seconds() const { return wait_seconds_; }

 private:
  void work(int worker);
  Batch build(int64_t step) const;

  const Dataset& dataset_;
  const GlobalBatchSampler& sampler_;
  LoaderOptions options_;
  bool pin_memory_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Batch> ready_;
  int64_t next_step_;
  bool stopping_ = false;
  std::exception_ptr error_;
  double wait_seconds_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace ocm::data
