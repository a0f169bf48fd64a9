#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace ocm::data {

// Note [world-size-invariant data order]
// The training stream is the concatenation of per-epoch permutations of the split, each drawn
// from (seed, epoch). The global batch of step k is positions [k B, (k + 1) B) of that stream,
// and rank r of W takes the contiguous slice [r B/W, (r + 1) B/W) of it. So every step sees the
// same global batch for any W that divides B, a sample's "global index" (its stream position)
// seeds its noise, timestep, probe and flip, and a run's data position is its step count alone.
class GlobalBatchSampler {
 public:
  GlobalBatchSampler(int64_t dataset_size, int64_t global_batch, uint64_t seed);

  int64_t global_batch() const { return global_batch_; }

  // Stream positions of rank `rank`'s share of step `step` (world must divide the global batch).
  std::vector<int64_t> positions(int64_t step, int rank, int world) const;

  // The dataset index at a stream position.
  int64_t index_at(int64_t position) const;

 private:
  const std::vector<int64_t>& permutation(int64_t epoch) const;

  int64_t size_;
  int64_t global_batch_;
  uint64_t seed_;
  mutable std::mutex mutex_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_;
  mutable int64_t previous_epoch_ = -1;  // batches straddle epochs: keep two permutations
  mutable std::vector<int64_t> previous_;
};

}  // namespace ocm::data
