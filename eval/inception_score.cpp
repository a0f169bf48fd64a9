#include "eval/inception_score.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

namespace ocm::eval {

InceptionScoreSums::InceptionScoreSums(int64_t total, int64_t splits, int64_t classes) {
  if (splits < 1 || splits > total || classes < 1)
    throw std::logic_error("InceptionScoreSums: need 1 <= splits <= total and classes >= 1");
  for (int64_t s = 0; s <= splits; ++s)
    bounds_.push_back(s * total / splits);
  counts_ = torch::zeros({splits}, torch::kFloat64);
  sums_ = torch::zeros({splits, classes}, torch::kFloat64);
  entropy_terms_ = torch::zeros({splits}, torch::kFloat64);
}

void InceptionScoreSums::add(const torch::Tensor& probabilities, int64_t first_index) {
  const torch::Tensor p = probabilities.detach().to(torch::kFloat64).cpu();
  if (p.dim() != 2 || p.size(1) != sums_.size(1) || first_index < 0 ||
      first_index + p.size(0) > bounds_.back())
    throw std::logic_error("InceptionScoreSums::add: probabilities of the wrong shape or range");
  const int64_t end = first_index + p.size(0);
  for (size_t s = 0; s + 1 < bounds_.size(); ++s) {
    const int64_t begin = std::max(first_index, bounds_[s]), stop = std::min(end, bounds_[s + 1]);
    if (begin >= stop)
      continue;
    const torch::Tensor part = p.narrow(0, begin - first_index, stop - begin);
    counts_[s] += static_cast<double>(stop - begin);
    sums_[s] += part.sum(0);
    entropy_terms_[s] += torch::xlogy(part, part).sum();  // 0 log 0 = 0
  }
}

void InceptionScoreSums::reduce(dist::Communicator& communicator) {
  const int64_t splits = counts_.size(0), classes = sums_.size(1);
  torch::Tensor packed = torch::cat({counts_, sums_.reshape({-1}), entropy_terms_});
  communicator.sum_async(packed)->wait();
  counts_.copy_(packed.narrow(0, 0, splits));
  sums_.copy_(packed.narrow(0, splits, splits * classes).view({splits, classes}));
  entropy_terms_.copy_(packed.narrow(0, splits + splits * classes, splits));
}

InceptionScore InceptionScoreSums::score() const {
  InceptionScore out;
  const int64_t splits = counts_.size(0);
  for (int64_t s = 0; s < splits; ++s) {
    const double n = counts_[s].item<double>();
    if (n != static_cast<double>(bounds_[s + 1] - bounds_[s]))
      throw std::logic_error("InceptionScoreSums::score: split " + std::to_string(s) +
                             " is incomplete");
    const torch::Tensor marginal = sums_[s] / n;
    const double kl = entropy_terms_[s].item<double>() / n -
                      torch::xlogy(marginal, marginal).sum().item<double>();
    out.split_scores.push_back(std::exp(kl));
    out.mean += out.split_scores.back() / static_cast<double>(splits);
  }
  double squares = 0;
  for (const double v : out.split_scores)
    squares += (v - out.mean) * (v - out.mean);
  out.split_sd = std::sqrt(squares / static_cast<double>(splits));
  if (splits > 1)
    out.standard_error =
        std::sqrt(squares / static_cast<double>(splits - 1) / static_cast<double>(splits));
  return out;
}

}  // namespace ocm::eval
