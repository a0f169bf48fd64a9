#include "diffusion/gaussian_mixture.h"

#include <cmath>

#include <torch/torch.h>

namespace ocm::diffusion {
namespace {

// Per-sample abar as [B, 1, 1] for broadcasting against [B, K, D].
torch::Tensor as_batch(const torch::Tensor& abar, int64_t batch) {
  return abar.to(torch::kFloat64).expand({batch}).reshape({batch, 1, 1});
}

}  // namespace

GaussianMixture::GaussianMixture(torch::Tensor weights, torch::Tensor means, torch::Tensor stds,
                                 Schedule schedule)
    : log_weights_(torch::log(weights.to(torch::kFloat64) / weights.to(torch::kFloat64).sum())),
      means_(means.to(torch::kFloat64)),
      variances_(stds.to(torch::kFloat64).square()),
      schedule_(std::move(schedule)),
      abar_table_(torch::tensor(schedule_.abars(), torch::kFloat64)) {}

torch::Tensor GaussianMixture::sample_data(SampleRandom& random) const {
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor u = random.uniform({}, options);  // [B]
  const torch::Tensor z = random.normal({dim()}, options);
  const torch::Tensor cumulative = torch::cumsum(torch::exp(log_weights_), 0);
  const torch::Tensor component =
      torch::searchsorted(cumulative, u.contiguous()).clamp_max(log_weights_.size(0) - 1);
  return means_.index_select(0, component) + variances_.index_select(0, component).sqrt() * z;
}

GaussianMixture::Posterior GaussianMixture::components(const torch::Tensor& x,
                                                       const torch::Tensor& abar) const {
  const torch::Tensor x64 = x.to(torch::kFloat64);
  const torch::Tensor a = as_batch(abar, x64.size(0)).to(x.device());
  const torch::Tensor means = means_.to(x.device());
  const torch::Tensor variances = variances_.to(x.device());
  const torch::Tensor v = a * variances.unsqueeze(0) + (1 - a);                 // [B, K, D]
  const torch::Tensor diff = x64.unsqueeze(1) - a.sqrt() * means.unsqueeze(0);  // [B, K, D]
  const torch::Tensor log_density = -0.5 * (diff.square() / v + torch::log(2 * M_PI * v)).sum(2);
  const torch::Tensor r =
      torch::softmax(log_weights_.to(x.device()).unsqueeze(0) + log_density, 1).unsqueeze(2);
  return {r, -diff / v, v};
}

torch::Tensor GaussianMixture::score(const torch::Tensor& x, const torch::Tensor& abar) const {
  const Posterior p = components(x, abar);
  return (p.responsibility * p.component_score).sum(1);
}

torch::Tensor GaussianMixture::hessian_diagonal(const torch::Tensor& x,
                                                const torch::Tensor& abar) const {
  const Posterior p = components(x, abar);
  const torch::Tensor mean_score = (p.responsibility * p.component_score).sum(1);
  // Hess log sum_k w_k N_k = sum_k r_k (g_k g_k^T + H_k) - (sum_k r_k g_k)(sum_k r_k g_k)^T.
  return (p.responsibility * (p.component_score.square() - 1 / p.variance)).sum(1) -
         mean_score.square();
}

torch::Tensor GaussianMixture::abar_at(const torch::Tensor& t) const {
  return abar_table_.index_select(0, t.to(torch::kInt64).cpu()).to(t.device());
}

torch::Tensor GaussianMixture::eps(const torch::Tensor& x, int64_t t) {
  const double a = schedule_.abar(t);
  return (-std::sqrt(1 - a) * score(x, torch::tensor(a, torch::kFloat64))).to(x.dtype());
}

std::pair<torch::Tensor, torch::Tensor> GaussianMixture::eps_and_h(const torch::Tensor& x,
                                                                   int64_t t) {
  const double a = schedule_.abar(t);
  const torch::Tensor abar = torch::tensor(a, torch::kFloat64);
  return {(-std::sqrt(1 - a) * score(x, abar)).to(x.dtype()),
          ((1 - a) * hessian_diagonal(x, abar)).to(x.dtype())};
}

TrunkOutput GaussianMixture::forward(const torch::Tensor& x, const torch::Tensor& t) {
  const torch::Tensor a = abar_at(t);
  const torch::Tensor eps = -(1 - a).sqrt().unsqueeze(1) * score(x, a);
  // A smooth code of the noise level: there is no learned embedding to absorb a sinusoidal one.
  const torch::Tensor time_code =
      torch::stack({a.sqrt(), (1 - a).sqrt(), 0.1 * torch::log(a / (1 - a))}, 1);
  return {eps.to(x.dtype()), x, time_code.to(x.dtype()), {}};
}

torch::Tensor GaussianMixture::optimal_h(const torch::Tensor& x, const torch::Tensor& t) const {
  const torch::Tensor a = abar_at(t);
  return ((1 - a).unsqueeze(1) * hessian_diagonal(x, a)).to(x.dtype());
}

}  // namespace ocm::diffusion
