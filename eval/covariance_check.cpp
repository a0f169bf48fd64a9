#include "eval/covariance_check.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"
#include "diffusion/covariance.h"
#include "diffusion/random.h"
#include "diffusion/sampler.h"
#include "eval/batches.h"
#include "eval/generate.h"

namespace ocm::eval {
namespace {

// Indices into the per-step float64 sums reduced across ranks.
enum Sum : int64_t {
  kHead,
  kMonteCarlo,
  kAnalytic,
  kSquaredError,
  kDifferenceSquared,
  kMonteCarloSquared,
  kUnderestimated,
  kBackgroundHead,
  kBackgroundError,
  kBackground,
  kKlFixedSmall,
  kKlAnalytic,
  kKlHead,
  kKlMonteCarlo,
  kEpsSquared,
  kDimensions,
  kSums
};

double total(const torch::Tensor& t) {
  return t.sum().item<double>();
}

}  // namespace

std::vector<CovarianceCheckRow> check_covariance(
    diffusion::DenoisingModel& model, const diffusion::Schedule& schedule, int64_t count,
    const std::function<torch::Tensor(const std::vector<int64_t>&)>& read,
    const CovarianceCheckRequest& request, dist::Communicator& communicator) {
  if (request.steps < 2 || request.probes < 1 || count < 1 || request.batch < 1)
    throw UserError("ocm covariance",
                    "was given --steps " + std::to_string(request.steps) + ", --probes " +
                        std::to_string(request.probes) + ", -n " + std::to_string(count) +
                        ", --batch " + std::to_string(request.batch),
                    "--steps >= 2, --probes >= 1, -n >= 1 and --batch >= 1");
  const std::vector<int64_t> times =
      diffusion::trajectory("linear", request.steps, schedule.num_timesteps());
  const int64_t steps = static_cast<int64_t>(times.size()) - 2;  // t -> s with s >= 1
  auto ocm_mc = diffusion::make_estimator("ocm-mc", schedule, {request.probes, nullptr});

  // Gamma_t of Analytic-DPM from the same elements, in a first pass: the scalar c_t it gives is
  // what every element's analytic KL term uses.
  torch::Tensor sums = torch::zeros({steps, kSums}, torch::kFloat64);
  const std::vector<int64_t> mine = share_of(count, communicator.rank(), communicator.world_size());
  auto for_each_batch =
      [&](const std::function<void(const torch::Tensor&, const std::vector<int64_t>&)>& body) {
        for (const auto& chunk : batches_of(mine, request.batch))
          body(read(chunk), chunk);
      };
  // The same x_t in both passes: each element's noise comes from its own stream, per step.
  auto diffused = [&](const torch::Tensor& x0, const std::vector<int64_t>& chunk, int64_t k) {
    diffusion::SampleRandom random(request.seed, RandomPurpose::kStatistics, chunk,
                                   static_cast<uint64_t>(k));
    const double a = schedule.abar(times[k]);
    return std::sqrt(a) * x0 + std::sqrt(1 - a) * random.normal(x0.sizes().slice(1), x0.options());
  };
  for_each_batch([&](const torch::Tensor& x0, const std::vector<int64_t>& chunk) {
    torch::NoGradGuard no_grad;
    sums[0][kDimensions] += static_cast<double>(x0.numel());
    for (int64_t k = 0; k < steps; ++k)
      sums[k][kEpsSquared] +=
          total(model.eps(diffused(x0, chunk, k), times[k]).to(torch::kFloat64).square());
  });
  communicator.sum_async(sums)->wait();
  const double dims = sums[0][kDimensions].item<double>();
  std::vector<double> analytic_c(steps);
  for (int64_t k = 0; k < steps; ++k) {
    const double a = schedule.abar(times[k]);
    const double gamma = sums[k][kEpsSquared].item<double>() / dims;
    analytic_c[k] = std::clamp((1 - a) / a * (1 - gamma), 0.0, 1.0);
  }

  sums.zero_();
  for_each_batch([&](const torch::Tensor& x0_float, const std::vector<int64_t>& chunk) {
    const torch::Tensor x0 = x0_float.to(torch::kFloat64);
    const torch::Tensor background = (x0_float <= -1).to(torch::kFloat64);
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = times[k];
      const int64_t s = times[k + 1];
      const torch::Tensor x_t = diffused(x0_float, chunk, k);
      torch::Tensor eps, h;
      {
        torch::NoGradGuard no_grad;
        if (request.head)
          std::tie(eps, h) = model.eps_and_h(x_t, t);
        else  // a score-phase checkpoint: the head's columns stay at 0
          eps = model.eps(x_t, t);
      }
      diffusion::SampleRandom probes(request.seed, RandomPurpose::kStatistics, chunk,
                                     static_cast<uint64_t>(steps + k));
      const torch::Tensor c_mc =
          ocm_mc->predict(model, x_t, t, s, probes).posterior_variance.to(torch::kFloat64);
      const double a = schedule.abar(t);
      const torch::Tensor c_head =
          h.defined() ? diffusion::posterior_variance_from_h(h, a).to(torch::kFloat64)
                      : torch::zeros_like(c_mc);
      const torch::Tensor x0_hat =
          diffusion::predict_x0(x_t.to(torch::kFloat64), eps.to(torch::kFloat64), a);
      const torch::Tensor error = (x0 - x0_hat).square();
      const auto coefficients = diffusion::step_coefficients(schedule, t, s);
      const double beta_tilde = coefficients.beta_tilde;
      const double k2 = coefficients.x0_coef * coefficients.x0_coef;
      // KL(N(mu~, b~) || N(mean, b~ + k^2 c)) with mu~ - mean = k (x0 - x0_hat).
      auto kl = [&](const torch::Tensor& c) {
        const torch::Tensor v = beta_tilde + k2 * c;
        return total(0.5 * (torch::log(v / beta_tilde) + (beta_tilde + k2 * error) / v - 1));
      };
      auto row = sums[k];
      row[kHead] += total(c_head);
      row[kMonteCarlo] += total(c_mc);
      row[kAnalytic] += analytic_c[k] * static_cast<double>(x0.numel());
      row[kSquaredError] += total(error);
      row[kDifferenceSquared] += total((c_head - c_mc).square());
      row[kMonteCarloSquared] += total(c_mc.square());
      row[kUnderestimated] += total((c_head < 0.5 * c_mc).to(torch::kFloat64));
      row[kBackgroundHead] += total(c_head * background);
      row[kBackgroundError] += total(error * background);
      row[kBackground] += total(background);
      row[kKlFixedSmall] += kl(torch::zeros_like(c_head));
      row[kKlAnalytic] += kl(torch::full_like(c_head, analytic_c[k]));
      row[kKlHead] += kl(c_head);
      row[kKlMonteCarlo] += kl(c_mc);
    }
  });
  communicator.sum_async(sums)->wait();

  std::vector<CovarianceCheckRow> rows;
  for (int64_t k = 0; k < steps; ++k) {
    auto at = [&](Sum which) { return sums[k][which].item<double>(); };
    const double background = std::max(1.0, at(kBackground));
    CovarianceCheckRow r;
    r.t = times[k];
    r.s = times[k + 1];
    r.head = at(kHead) / dims;
    r.monte_carlo = at(kMonteCarlo) / dims;
    r.analytic = at(kAnalytic) / dims;
    r.squared_error = at(kSquaredError) / dims;
    r.relative_rms = std::sqrt(at(kDifferenceSquared) / std::max(at(kMonteCarloSquared), 1e-300));
    r.underestimated = at(kUnderestimated) / dims;
    r.background_head = at(kBackgroundHead) / background;
    r.background_error = at(kBackgroundError) / background;
    r.background_share = at(kBackground) / dims;
    r.kl_fixed_small = at(kKlFixedSmall) / dims;
    r.kl_analytic = at(kKlAnalytic) / dims;
    r.kl_head = at(kKlHead) / dims;
    r.kl_monte_carlo = at(kKlMonteCarlo) / dims;
    rows.push_back(r);
  }
  return rows;
}

}  // namespace ocm::eval
