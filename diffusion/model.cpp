#include "diffusion/model.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::diffusion {

// Each published network's float32 operations, in its order: the embedding of large times
// is sensitive to the last bit of the frequencies.
torch::Tensor sin_cos_embedding(const torch::Tensor& time, int64_t dim) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(time.device());
  const double step = std::log(10000.0) / static_cast<double>(dim / 2 - 1);
  const torch::Tensor frequencies = torch::exp(torch::arange(dim / 2, options) * -step);
  const torch::Tensor a = time.to(torch::kFloat32).unsqueeze(1) * frequencies.unsqueeze(0);
  return torch::cat({torch::sin(a), torch::cos(a)}, 1);
}

torch::Tensor cos_sin_embedding(const torch::Tensor& time, int64_t dim) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(time.device());
  const torch::Tensor frequencies = torch::exp(torch::arange(dim / 2, options) *
                                               -std::log(10000.0) / static_cast<double>(dim / 2));
  const torch::Tensor a = time.to(torch::kFloat32).unsqueeze(1) * frequencies.unsqueeze(0);
  return torch::cat({torch::cos(a), torch::sin(a)}, 1);
}

namespace {

// The trunk on a batch that is all at step t.
TrunkOutput forward_at(Trunk& trunk, const torch::Tensor& x, int64_t t) {
  return trunk.forward(x,
                       torch::full({x.size(0)}, t, torch::dtype(torch::kInt64).device(x.device())));
}

[[noreturn]] void no_learned_variance() {
  throw UserError("model", "has no learned variance",
                  "an improved-DDPM network with learned sigma (model.learn_sigma: true), "
                  "imported with ocm import",
                  "Use --cov fixed-small, fixed-large, analytic, ocm or ocm-mc.");
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> DenoisingModel::eps_and_variance(const torch::Tensor&,
                                                                         int64_t) {
  no_learned_variance();
}

NetworkDenoiser::NetworkDenoiser(std::shared_ptr<Trunk> trunk, std::shared_ptr<Head> head)
    : trunk_(std::move(trunk)), head_(std::move(head)) {}

torch::Tensor NetworkDenoiser::eps(const torch::Tensor& x, int64_t t) {
  return forward_at(*trunk_, x, t).eps;
}

std::pair<torch::Tensor, torch::Tensor> NetworkDenoiser::eps_and_h(const torch::Tensor& x,
                                                                   int64_t t) {
  if (!head_) {
    throw UserError("model", "has no OCM head", "a run whose OCM phase has trained the head",
                    "Train the OCM phase first, or sample with --cov fixed-small, fixed-large, "
                    "analytic or ocm-mc.");
  }
  const TrunkOutput out = forward_at(*trunk_, x, t);
  return {out.eps, head_->forward(out.features, out.time_embedding)};
}

std::pair<torch::Tensor, torch::Tensor> NetworkDenoiser::eps_and_variance(const torch::Tensor& x,
                                                                          int64_t t) {
  const TrunkOutput out = forward_at(*trunk_, x, t);
  if (!out.variance.defined())
    no_learned_variance();
  return {out.eps, out.variance};
}

}  // namespace ocm::diffusion
