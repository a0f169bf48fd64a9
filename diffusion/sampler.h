#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "diffusion/covariance.h"
#include "diffusion/model.h"
#include "diffusion/schedule.h"

namespace ocm::diffusion {

struct SamplerOptions {
  std::string kind = "ddpm";          // ddpm (Markovian) or ddim (non-Markovian, eta)
  double eta = 0.0;                   // ddim only
  std::string trajectory = "linear";  // or quadratic
  int64_t steps = 10;                 // K network evaluations
  bool clip_x0 = true;                // clamp x0_hat to [-1, 1]: image data
  double sigma_clip = 1.0;            // p of the last noisy step's clip; 0 turns it off
};

// Coefficients of the reverse step t -> s (docs/maths.md section 6).
struct StepCoefficients {
  double abar_t, abar_s;
  double beta;        // 1 - abar_t / abar_s
  double beta_tilde;  // (1 - abar_s) / (1 - abar_t) * beta
  double x0_coef;     // sqrt(abar_s) beta / (1 - abar_t): the DDPM mean's weight on x0
  double xt_coef;     // sqrt(abar_t / abar_s) (1 - abar_s) / (1 - abar_t)
};
StepCoefficients step_coefficients(const Schedule& schedule, int64_t t, int64_t s);

struct StepGaussian {
  torch::Tensor mean;
  torch::Tensor variance;
};

// The DDPM-type step with x0 (x0_hat, or the true x0 for the posterior q(x_s | x_t, x0)).
StepGaussian ddpm_step(const StepCoefficients& k, const torch::Tensor& x_t, const torch::Tensor& x0,
                       const Prediction& prediction);

// x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t).
torch::Tensor predict_x0(const torch::Tensor& x_t, const torch::Tensor& eps, double abar_t);

// Draws samples [B, sample_shape...] for the given global sample indices. Sample i depends only
// on (seed, i, options, model): see Note [per-sample randomness].
torch::Tensor sample(DenoisingModel& model, CovarianceEstimator& estimator,
                     const Schedule& schedule, const SamplerOptions& options,
                     at::IntArrayRef sample_shape, uint64_t seed,
                     const std::vector<int64_t>& indices,
                     const torch::TensorOptions& tensor_options);

}  // namespace ocm::diffusion
