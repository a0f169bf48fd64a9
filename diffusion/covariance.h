#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "diffusion/model.h"
#include "diffusion/random.h"
#include "diffusion/schedule.h"

namespace ocm::diffusion {

// The model's output at x_t for the reverse step t -> s, with the covariance that step uses.
struct Prediction {
  torch::Tensor eps;
  // Diagonal of Cov[x0 | x_t], c_t(x_t) in [0, 1], broadcastable to x_t (docs/maths.md section 5).
  torch::Tensor posterior_variance;
  // Set by fixed-large and learned: the reverse step's variance itself, which no c expresses for
  // the DDIM-type step.
  torch::Tensor step_variance;
};

// Gamma_t = E ||eps_theta(x_t, t)||^2 / d over data, per trajectory time (Analytic-DPM).
struct AnalyticTable {
  std::map<int64_t, double> gamma;
};

// One of the estimators of docs/maths.md section 5, chosen by name.
class CovarianceEstimator {
 public:
  virtual ~CovarianceEstimator() = default;
  virtual Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t s,
                             SampleRandom& random) = 0;
};

class GaussianMixture;

struct EstimatorOptions {
  int64_t probes = 1;                      // ocm-mc: Rademacher probes per step
  const AnalyticTable* table = nullptr;    // analytic: Gamma_t for every t of the trajectory
  double c_scale = 1.0;                    // multiplies c_t (Note [c_t scale]); not fixed-large
  std::vector<int64_t> trajectory;         // learned: the sampled times, decreasing, then 0
  const GaussianMixture* truth = nullptr;  // exact: the distribution the data came from
};

// Throws UserError unless `scale` (EstimatorOptions::c_scale, eval's --cov-scale) is a finite
// number >= 0.
void check_c_scale(double scale);

// name: fixed-small, fixed-large, analytic, ocm, ocm-mc, learned (Note [learned variance]) or
// exact (the true posterior variance of options.truth, with the model's eps).
// Throws UserError on anything else, and on a c_scale that is negative, not finite, or given to
// fixed-large or learned.
std::unique_ptr<CovarianceEstimator> make_estimator(const std::string& name,
                                                    const Schedule& schedule,
                                                    const EstimatorOptions& options = {});

const std::vector<std::string>& estimator_names();

// c_t = (1 - abar_t) / abar_t * (1 + h), clamped to [0, 1].
torch::Tensor posterior_variance_from_h(const torch::Tensor& h, double abar_t);

// Monte Carlo estimate of Gamma_t at each nonzero time of `times`, from `batches` batches of data
// x0 given by `data(batch_index)`, with per-sample noise from (seed, sample index).
AnalyticTable estimate_analytic_table(DenoisingModel& model, const Schedule& schedule,
                                      const std::vector<int64_t>& times,
                                      const std::function<torch::Tensor(int64_t)>& data,
                                      int64_t batches, uint64_t seed);

}  // namespace ocm::diffusion
