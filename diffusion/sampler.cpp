#include "diffusion/sampler.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::diffusion {

StepCoefficients step_coefficients(const Schedule& schedule, int64_t t, int64_t s) {
  StepCoefficients k;
  k.abar_t = schedule.abar(t);
  k.abar_s = schedule.abar(s);
  k.beta = 1 - k.abar_t / k.abar_s;
  k.beta_tilde = (1 - k.abar_s) / (1 - k.abar_t) * k.beta;
  k.x0_coef = std::sqrt(k.abar_s) * k.beta / (1 - k.abar_t);
  k.xt_coef = std::sqrt(k.abar_t / k.abar_s) * (1 - k.abar_s) / (1 - k.abar_t);
  return k;
}

StepGaussian ddpm_step(const StepCoefficients& k, const torch::Tensor& x_t, const torch::Tensor& x0,
                       const Prediction& prediction) {
  const torch::Tensor mean = k.x0_coef * x0 + k.xt_coef * x_t;
  if (prediction.step_variance.defined())
    return {mean, prediction.step_variance};
  return {mean, k.beta_tilde + k.x0_coef * k.x0_coef * prediction.posterior_variance};
}

torch::Tensor predict_x0(const torch::Tensor& x_t, const torch::Tensor& eps, double abar_t) {
  return (x_t - std::sqrt(1 - abar_t) * eps) / std::sqrt(abar_t);
}

namespace {

StepGaussian ddim_step(const StepCoefficients& k, double eta, const torch::Tensor& x_t,
                       const torch::Tensor& x0_hat, const Prediction& prediction) {
  if (prediction.step_variance.defined()) {
    throw UserError("--cov fixed-large and learned", "are defined for the DDPM-type sampler only",
                    "--sampler ddpm, or another covariance with ddim");
  }
  const double lambda2 = eta * eta * k.beta_tilde;
  const torch::Tensor eps_hat = (x_t - std::sqrt(k.abar_t) * x0_hat) / std::sqrt(1 - k.abar_t);
  const double direction = std::sqrt(1 - k.abar_s - lambda2);
  const double c_coef =
      std::sqrt(k.abar_s) - std::sqrt((1 - k.abar_s - lambda2) * k.abar_t / (1 - k.abar_t));
  return {std::sqrt(k.abar_s) * x0_hat + direction * eps_hat,
          lambda2 + c_coef * c_coef * prediction.posterior_variance};
}

void check_options(const SamplerOptions& options) {
  if (options.kind != "ddpm" && options.kind != "ddim") {
    throw UserError("--sampler " + options.kind, "unknown sampler", "ddpm or ddim");
  }
  if (!(options.eta >= 0 && options.eta <= 1)) {
    throw UserError("--eta", "is " + std::to_string(options.eta), "a number in [0, 1]");
  }
}

}  // namespace

torch::Tensor sample(DenoisingModel& model, CovarianceEstimator& estimator,
                     const Schedule& schedule, const SamplerOptions& options,
                     at::IntArrayRef sample_shape, uint64_t seed,
                     const std::vector<int64_t>& indices,
                     const torch::TensorOptions& tensor_options) {
  check_options(options);
  const std::vector<int64_t> times =
      trajectory(options.trajectory, options.steps, schedule.num_timesteps());
  torch::NoGradGuard no_grad;
  SampleRandom random(seed, RandomPurpose::kSampling, indices);
  torch::Tensor x = random.normal(sample_shape, tensor_options);
  // The largest sigma^2 of the step that lands at s = 1: p bins of width 2/255, times sqrt(pi/2).
  const double sigma_clip = options.sigma_clip * (2.0 / 255.0) * std::sqrt(M_PI / 2);
  for (size_t k = 0; k + 1 < times.size(); ++k) {
    const int64_t t = times[k];
    const int64_t s = times[k + 1];
    const Prediction prediction = estimator.predict(model, x, t, s, random);
    torch::Tensor x0_hat = predict_x0(x, prediction.eps, schedule.abar(t));
    if (options.clip_x0)
      x0_hat = x0_hat.clamp(-1, 1);
    if (s == 0) {
      x = x0_hat;
      break;
    }
    const StepCoefficients coefficients = step_coefficients(schedule, t, s);
    StepGaussian step = options.kind == "ddpm"
                            ? ddpm_step(coefficients, x, x0_hat, prediction)
                            : ddim_step(coefficients, options.eta, x, x0_hat, prediction);
    if (s == 1 && options.sigma_clip > 0)
      step.variance = step.variance.clamp_max(sigma_clip * sigma_clip);
    x = step.mean + step.variance.sqrt() * random.normal(sample_shape, tensor_options);
  }
  return x;
}

}  // namespace ocm::diffusion
