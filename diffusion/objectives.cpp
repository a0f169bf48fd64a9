#include "diffusion/objectives.h"

#include <torch/torch.h>

#include "diffusion/random.h"

namespace ocm::diffusion {
namespace {

// abar at per-sample timesteps, shaped [B, 1, ...] to broadcast against x.
torch::Tensor abar_like(const Schedule& schedule, const torch::Tensor& t, const torch::Tensor& x) {
  const torch::Tensor table =
      to_device_nonblocking(torch::tensor(schedule.abars(), torch::kFloat64),
                            torch::TensorOptions().device(x.device()).dtype(torch::kFloat64));
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  return table.index_select(0, t.to(table.device(), torch::kInt64)).to(x.dtype()).reshape(shape);
}

}  // namespace

torch::Tensor diffuse(const Schedule& schedule, const torch::Tensor& x0, const torch::Tensor& t,
                      const torch::Tensor& noise) {
  const torch::Tensor a = abar_like(schedule, t, x0);
  return a.sqrt() * x0 + (1 - a).sqrt() * noise;
}

torch::Tensor eps_matching_loss(Trunk& trunk, const Schedule& schedule, const torch::Tensor& x0,
                                const torch::Tensor& t, const torch::Tensor& noise) {
  return (trunk.forward(diffuse(schedule, x0, t, noise), t).eps - noise).square().mean();
}

torch::Tensor ocm_target(const torch::Tensor& eps, const torch::Tensor& x_t,
                         const torch::Tensor& abar, const torch::Tensor& probes) {
  const int64_t m = probes.size(0);
  torch::Tensor sum = torch::zeros_like(x_t);
  for (int64_t i = 0; i < m; ++i) {
    const torch::Tensor v = probes[i];
    // The graph is kept for the caller (it goes with `eps`): ocm_loss drops it right after.
    const torch::Tensor jtv =
        torch::autograd::grad({(eps * v).sum()}, {x_t}, {}, /*retain_graph=*/true)[0];
    // <s, v> = -<eps, v> / sqrt(1 - abar), so (1 - abar) v * d<s,v>/dx = -sqrt(1 - abar) v * J^T v.
    sum += v * jtv;
  }
  return (-(1 - abar).sqrt() * sum / static_cast<double>(m)).detach();
}

torch::Tensor ocm_loss(Trunk& trunk, Head& head, const Schedule& schedule, const torch::Tensor& x0,
                       const torch::Tensor& t, const torch::Tensor& noise,
                       const torch::Tensor& probes) {
  const torch::Tensor x_t = diffuse(schedule, x0, t, noise).detach().requires_grad_(true);
  const TrunkOutput out = trunk.forward(x_t, t);
  const torch::Tensor target = ocm_target(out.eps, x_t, abar_like(schedule, t, x_t), probes);
  const torch::Tensor h = head.forward(out.features.detach(), out.time_embedding.detach());
  return (h - target).square().mean();
}

}  // namespace ocm::diffusion
