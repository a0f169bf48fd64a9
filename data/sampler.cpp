#include "data/sampler.h"

#include <numeric>
#include <stdexcept>
#include <string>

#include "common/error.h"
#include "common/seeding.h"

namespace ocm::data {

GlobalBatchSampler::GlobalBatchSampler(int64_t dataset_size, int64_t global_batch, uint64_t seed)
    : size_(dataset_size), global_batch_(global_batch), seed_(seed) {
  if (dataset_size < 1)
    throw UserError("dataset", "is empty", "at least one element");
  if (global_batch < 1)
    throw UserError("batch_size", "is " + std::to_string(global_batch), "at least 1");
}

std::vector<int64_t> GlobalBatchSampler::positions(int64_t step, int rank, int world) const {
  if (world < 1 || global_batch_ % world != 0) {
    throw UserError("batch_size",
                    std::to_string(global_batch_) + " is not divisible by the " +
                        std::to_string(world) + " ranks",
                    "a global batch that every rank gets an equal share of");
  }
  const int64_t share = global_batch_ / world;
  std::vector<int64_t> out(share);
  std::iota(out.begin(), out.end(), step * global_batch_ + rank * share);
  return out;
}

const std::vector<int64_t>& GlobalBatchSampler::permutation(int64_t epoch) const {
  if (epoch == cached_epoch_)
    return cached_;
  if (epoch == previous_epoch_)
    return previous_;
  previous_epoch_ = cached_epoch_;
  previous_.swap(cached_);
  cached_.resize(size_);
  std::iota(cached_.begin(), cached_.end(), 0);
  RandomStream stream(derive_seed(
      {static_cast<uint64_t>(RandomPurpose::kDataOrder), seed_, static_cast<uint64_t>(epoch)}));
  for (int64_t i = size_ - 1; i > 0; --i) {  // Fisher-Yates
    std::swap(cached_[i],
              cached_[static_cast<int64_t>(stream.below(static_cast<uint64_t>(i + 1)))]);
  }
  cached_epoch_ = epoch;
  return cached_;
}

int64_t GlobalBatchSampler::index_at(int64_t position) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return permutation(position / size_)[position % size_];
}

}  // namespace ocm::data
