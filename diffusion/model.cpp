#include "diffusion/model.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::diffusion {

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  const torch::Tensor frequencies = torch::exp(
      torch::arange(half, options) * (-std::log(10000.0) / static_cast<double>(half - 1)));
  const torch::Tensor angles = t.to(torch::kFloat32).unsqueeze(1) * frequencies.unsqueeze(0);
  return torch::cat({torch::sin(angles), torch::cos(angles)}, 1);
}

NetworkDenoiser::NetworkDenoiser(std::shared_ptr<Trunk> trunk, std::shared_ptr<Head> head)
    : trunk_(std::move(trunk)), head_(std::move(head)) {}

torch::Tensor NetworkDenoiser::eps(const torch::Tensor& x, int64_t t) {
  return trunk_
      ->forward(x, torch::full({x.size(0)}, t, torch::dtype(torch::kInt64).device(x.device())))
      .eps;
}

std::pair<torch::Tensor, torch::Tensor> NetworkDenoiser::eps_and_h(const torch::Tensor& x,
                                                                   int64_t t) {
  if (!head_) {
    throw UserError("model", "has no OCM head", "a run whose OCM phase has trained the head",
                    "Train the OCM phase first, or sample with --cov fixed-small, fixed-large, "
                    "analytic or ocm-mc.");
  }
  const TrunkOutput out = trunk_->forward(
      x, torch::full({x.size(0)}, t, torch::dtype(torch::kInt64).device(x.device())));
  return {out.eps, head_->forward(out.features, out.time_embedding)};
}

}  // namespace ocm::diffusion
