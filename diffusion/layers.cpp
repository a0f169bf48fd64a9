#include "diffusion/layers.h"

#include <torch/torch.h>

namespace ocm::diffusion::layers {

torch::Tensor group_norm_fp32(const torch::nn::GroupNorm& norm, const torch::Tensor& x) {
  const auto compute = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const auto& o = norm->options;
  return torch::group_norm(x.to(compute), o.num_groups(), norm->weight.to(compute),
                           norm->bias.to(compute), o.eps())
      .to(x.scalar_type());
}

void zero_init(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    p.zero_();
}

torch::Tensor upsample_nearest(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{2.0, 2.0})
                               .mode(torch::kNearest));
}

}  // namespace ocm::diffusion::layers
