#include "diffusion/likelihood.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"
#include "diffusion/sampler.h"

namespace ocm::diffusion {
namespace {

// KL(N(m1, v1) || N(m2, v2)) per element.
torch::Tensor gaussian_kl(const torch::Tensor& m1, const torch::Tensor& v1, const torch::Tensor& m2,
                          const torch::Tensor& v2) {
  return 0.5 * (torch::log(v2 / v1) + (v1 + (m1 - m2).square()) / v2 - 1);
}

torch::Tensor standard_normal_cdf(const torch::Tensor& z) {
  return 0.5 * (1 + torch::erf(z / std::sqrt(2.0)));
}

torch::Tensor sum_per_sample(const torch::Tensor& t) {
  return t.flatten(1).sum(1);
}

}  // namespace

double decoder_variance(const Schedule& schedule) {
  const double a1 = schedule.abar(1);
  const double a2 = schedule.abar(2);
  return (1 - a1) / (1 - a2) * (1 - a2 / a1);
}

torch::Tensor discretized_gaussian_nll(const torch::Tensor& x0, const torch::Tensor& mean,
                                       const torch::Tensor& variance) {
  const double half_bin = 1.0 / 255.0;
  const torch::Tensor x = x0.to(torch::kFloat64);
  const torch::Tensor inv_std = torch::rsqrt(variance.to(torch::kFloat64));
  const torch::Tensor centred = x - mean.to(torch::kFloat64);
  const torch::Tensor upper = standard_normal_cdf((centred + half_bin) * inv_std);
  const torch::Tensor lower = standard_normal_cdf((centred - half_bin) * inv_std);
  const torch::Tensor probability = torch::where(
      x < -1 + half_bin, upper, torch::where(x > 1 - half_bin, 1 - lower, upper - lower));
  return -torch::log(probability.clamp_min(1e-12));
}

torch::Tensor negative_elbo_bpd(DenoisingModel& model, CovarianceEstimator& estimator,
                                const Schedule& schedule, const LikelihoodOptions& options,
                                const torch::Tensor& x0_in, uint64_t seed,
                                const std::vector<int64_t>& indices) {
  if (options.decoder != "discretized" && options.decoder != "gaussian") {
    throw UserError("likelihood decoder", "is `" + options.decoder + "`",
                    "discretized or gaussian");
  }
  const std::vector<int64_t> times =
      trajectory(options.trajectory, options.steps, schedule.num_timesteps());
  if (times[times.size() - 2] != 1) {
    throw UserError("likelihood trajectory", "does not end at timestep 1",
                    "a trajectory through t = 1");
  }
  torch::NoGradGuard no_grad;
  const auto clip = [&](const torch::Tensor& x0_hat) {
    return options.clip_x0 ? x0_hat.clamp(-1, 1) : x0_hat;
  };
  SampleRandom random(seed, RandomPurpose::kLikelihood, indices);
  const torch::Tensor x0 = x0_in.to(torch::kFloat64);
  const auto sample_shape = x0.sizes().slice(1);
  auto diffuse = [&](int64_t t) {
    const double a = schedule.abar(t);
    const torch::Tensor noise = random.normal(sample_shape, x0.options()).to(x0_in.dtype());
    return (std::sqrt(a) * x0_in + std::sqrt(1 - a) * noise);
  };

  const double a_n = schedule.abar(schedule.num_timesteps());
  torch::Tensor nats =
      sum_per_sample(gaussian_kl(std::sqrt(a_n) * x0, torch::full({}, 1 - a_n, x0.options()),
                                 torch::zeros({}, x0.options()), torch::ones({}, x0.options())));
  for (size_t k = 0; k + 2 < times.size(); ++k) {  // steps t -> s with s >= 1
    const int64_t t = times[k];
    const int64_t s = times[k + 1];
    const torch::Tensor x_t = diffuse(t);
    Prediction prediction = estimator.predict(model, x_t, t, s, random);
    const StepCoefficients coefficients = step_coefficients(schedule, t, s);
    // In float64 from the start: at large t, 1 / sqrt(abar_t) amplifies float32 rounding.
    const torch::Tensor x0_hat = clip(predict_x0(
        x_t.to(torch::kFloat64), prediction.eps.to(torch::kFloat64), coefficients.abar_t));
    if (prediction.posterior_variance.defined()) {
      prediction.posterior_variance = prediction.posterior_variance.to(torch::kFloat64);
    }
    if (prediction.step_variance.defined())
      prediction.step_variance = prediction.step_variance.to(torch::kFloat64);
    const torch::Tensor x_t64 = x_t.to(torch::kFloat64);
    const StepGaussian truth =
        ddpm_step(coefficients, x_t64, x0, Prediction{{}, torch::zeros({}, x0.options()), {}});
    const StepGaussian modelled = ddpm_step(coefficients, x_t64, x0_hat, prediction);
    nats += sum_per_sample(gaussian_kl(truth.mean, truth.variance, modelled.mean,
                                       modelled.variance.expand_as(truth.mean)));
  }
  const int64_t t1 = times[times.size() - 2];
  const torch::Tensor x_1 = diffuse(t1);
  const torch::Tensor mean =
      clip(predict_x0(x_1, model.eps(x_1, t1), schedule.abar(t1)).to(torch::kFloat64));
  const torch::Tensor variance = torch::full({}, decoder_variance(schedule), x0.options());
  if (options.decoder == "discretized") {
    nats += sum_per_sample(discretized_gaussian_nll(x0, mean, variance.expand_as(x0)));
  } else {
    nats +=
        sum_per_sample(0.5 * (torch::log(2 * M_PI * variance) + (x0 - mean).square() / variance));
  }
  const double dims = static_cast<double>(x0[0].numel());
  return nats / (dims * std::log(2.0));
}

}  // namespace ocm::diffusion
