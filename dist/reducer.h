#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "dist/communicator.h"

namespace ocm::dist {

// Note [gradient buckets]
// Parameters are grouped, in reverse registration order (roughly the order backward produces
// their gradients), into buckets of up to `bucket_bytes`. A tensor hook on each parameter copies
// its gradient into the bucket's flat buffer as backward produces it; when a bucket's last
// gradient arrives its average over ranks is handed to the communicator at once, so
// communication overlaps the rest of backward. finish() waits for every bucket and writes the
// averages into the .grad tensors. Each parameter must receive exactly one gradient per backward
// (no weight sharing), which finish() checks.
//
// Gradient accumulation: backward passes run while accumulate(true) leave their gradients in
// .grad untouched by the reducer; the next synchronised backward adds what .grad holds to its
// own gradient as it copies it into the bucket, so one all-reduce carries the whole step.
class GradientReducer {
 public:
  GradientReducer(std::vector<torch::Tensor> parameters, Communicator& communicator,
                  int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After backward: waits for all buckets and replaces each .grad by the average over ranks.
  void finish();

  // While true, backward passes only accumulate into .grad (see above).
  void accumulate(bool on) { accumulating_ = on; }

  size_t bucket_count() const;

 private:
  struct Bucket;
  void on_gradient(size_t parameter, const torch::Tensor& gradient);

  std::vector<torch::Tensor> parameters_;
  Communicator& communicator_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::pair<size_t, int64_t>> slot_;  // per parameter: bucket, offset in elements
  std::vector<int> arrivals_;                     // per parameter, this step
  bool accumulating_ = false;
};

}  // namespace ocm::dist
