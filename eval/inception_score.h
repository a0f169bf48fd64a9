// The Inception Score of generated images, accumulated over ranks as float64 sums.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "dist/communicator.h"

namespace ocm::eval {

// Note [Inception Score]
// IS = exp(E_x KL(p(y|x) || p(y))), computed as Salimans et al. (2016) and StyleGAN3's
// metrics/inception_score.py do: the N samples are cut by index into S splits (split s holds
// indices [s N / S, (s + 1) N / S)), each split's score uses that split's own marginal p(y), and
// the reported value is the mean over splits. Per split,
//   mean_x KL = (1/n) sum_x sum_y p log p  -  sum_y pbar log pbar,  pbar = (1/n) sum_x p(y|x),
// so a split needs only n, sum_x p(y|x) and sum_x sum_y p log p: float64 sums that ranks add,
// whatever their shares of the indices. The published "± x" is the standard deviation over the
// splits (numpy's std, ddof 0); we report the standard error of the mean over splits as the
// value's uncertainty and log the published spread beside it.
struct InceptionScore {
  double mean = 0;                       // over splits: the Inception Score
  double split_sd = 0;                   // standard deviation over splits (ddof 0), as published
  std::optional<double> standard_error;  // of the mean over splits (ddof 1); absent for one
  std::vector<double> split_scores;      // exp(mean KL) of each split
};

class InceptionScoreSums {
 public:
  // `total` samples with indices [0, total) cut into `splits` (1 <= splits <= total) splits of
  // `classes` classes each.
  InceptionScoreSums(int64_t total, int64_t splits, int64_t classes);
  // Class probabilities [n, classes] of the samples with indices first, ..., first + n - 1.
  void add(const torch::Tensor& probabilities, int64_t first_index);
  void reduce(dist::Communicator& communicator);  // sums over ranks, in place
  // Throws std::logic_error unless every split has all its samples.
  InceptionScore score() const;

 private:
  std::vector<int64_t> bounds_;  // split s is [bounds_[s], bounds_[s + 1])
  torch::Tensor counts_;         // float64 [S]
  torch::Tensor sums_;           // float64 [S, classes]: sum of p(y|x)
  torch::Tensor entropy_terms_;  // float64 [S]: sum of p log p over samples and classes
};

}  // namespace ocm::eval
