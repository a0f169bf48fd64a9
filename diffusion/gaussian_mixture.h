#pragma once

#include <cstdint>

#include <torch/types.h>

#include "diffusion/model.h"
#include "diffusion/random.h"
#include "diffusion/schedule.h"

namespace ocm::diffusion {

// Data from a mixture of diagonal Gaussians, sum_k w_k N(mu_k, diag(s_k^2)), with every quantity
// of the diffused marginal p_n in closed form: score, Hessian diagonal, eps and the OCM head's
// target h* = (1 - abar) diag(Hess log p_n). It acts as a perfectly trained network: as a
// DenoisingModel (eps and h*) and as a Trunk (eps, features = x, and as time embedding
// sqrt(abar), sqrt(1 - abar) and log(abar / (1 - abar)) / 10),
// so heads can be trained on the exact score. Computes in float64, returns the input's dtype.
class GaussianMixture : public DenoisingModel, public Trunk {
 public:
  // weights [K], means [K, D], stds [K, D].
  GaussianMixture(torch::Tensor weights, torch::Tensor means, torch::Tensor stds,
                  Schedule schedule);

  int64_t dim() const { return means_.size(1); }
  const Schedule& schedule() const { return schedule_; }

  // x0 samples [B, D] drawn with the per-sample generators.
  torch::Tensor sample_data(SampleRandom& random) const;

  // At per-sample abar [B] (broadcast from a scalar tensor too):
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& abar) const;
  torch::Tensor hessian_diagonal(const torch::Tensor& x, const torch::Tensor& abar) const;

  torch::Tensor eps(const torch::Tensor& x, int64_t t) override;
  std::pair<torch::Tensor, torch::Tensor> eps_and_h(const torch::Tensor& x, int64_t t) override;
  TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) override;

  // h* at per-sample timesteps t [B].
  torch::Tensor optimal_h(const torch::Tensor& x, const torch::Tensor& t) const;

  static constexpr int64_t kTimeEmbeddingDim = 3;

 private:
  struct Posterior {
    torch::Tensor responsibility;   // [B, K, 1]
    torch::Tensor component_score;  // [B, K, D]
    torch::Tensor variance;         // [B, K, D]
  };
  Posterior components(const torch::Tensor& x, const torch::Tensor& abar) const;
  torch::Tensor abar_at(const torch::Tensor& t) const;  // [B] float64

  torch::Tensor log_weights_;
  torch::Tensor means_;
  torch::Tensor variances_;
  Schedule schedule_;
  torch::Tensor abar_table_;  // [N + 1] float64
};

}  // namespace ocm::diffusion
