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

// One check: the trajectory, this rank's elements, and the two passes over them.
class Check {
 public:
  Check(diffusion::DenoisingModel& model, const diffusion::Schedule& schedule, int64_t count,
        const CovarianceCheckRequest& request, dist::Communicator& communicator)
      : model_(model),
        schedule_(schedule),
        request_(request),
        times_(diffusion::trajectory("linear", request.steps, schedule.num_timesteps())),
        steps_(static_cast<int64_t>(times_.size()) - 2),  // t -> s with s >= 1
        batches_(batches_of(share_of(count, communicator.rank(), communicator.world_size()),
                            request.batch)),
        ocm_mc_(diffusion::make_estimator("ocm-mc", schedule, {request.probes, nullptr, 1.0, {}})) {
  }

  int64_t steps() const { return steps_; }

  // Gamma_t of Analytic-DPM from the same elements, in a first pass: the scalar c_t it gives is
  // what every element's analytic KL term uses. Adds the dimensions and the eps^2 sums.
  void sum_eps_squared(const ElementReader& read, torch::Tensor& sums) const {
    torch::NoGradGuard no_grad;
    for (const auto& chunk : batches_) {
      const torch::Tensor x0 = read(chunk);
      sums[0][kDimensions] += static_cast<double>(x0.numel());
      for (int64_t k = 0; k < steps_; ++k)
        sums[k][kEpsSquared] +=
            total(model_.eps(diffused(x0, chunk, k), times_[k]).to(torch::kFloat64).square());
    }
  }

  std::vector<double> analytic_c(const torch::Tensor& sums) const {
    const double dims = sums[0][kDimensions].item<double>();
    std::vector<double> c(steps_);
    for (int64_t k = 0; k < steps_; ++k) {
      const double a = schedule_.abar(times_[k]);
      const double gamma = sums[k][kEpsSquared].item<double>() / dims;
      c[k] = std::clamp((1 - a) / a * (1 - gamma), 0.0, 1.0);
    }
    return c;
  }

  // The second pass: every estimator's c_t, the realised error and the KL terms, per step.
  void sum_comparisons(const ElementReader& read, const std::vector<double>& analytic_c,
                       torch::Tensor& sums) const {
    for (const auto& chunk : batches_) {
      const torch::Tensor x0 = read(chunk);
      for (int64_t k = 0; k < steps_; ++k)
        compare_step(x0, chunk, k, analytic_c[k], sums[k]);
    }
  }

  std::vector<CovarianceCheckRow> rows(const torch::Tensor& sums, double dims) const;

 private:
  // The same x_t in both passes: each element's noise comes from its own stream, per step.
  torch::Tensor diffused(const torch::Tensor& x0, const std::vector<int64_t>& chunk,
                         int64_t k) const {
    diffusion::SampleRandom random(request_.seed, RandomPurpose::kStatistics, chunk,
                                   static_cast<uint64_t>(k));
    const double a = schedule_.abar(times_[k]);
    return std::sqrt(a) * x0 + std::sqrt(1 - a) * random.normal(x0.sizes().slice(1), x0.options());
  }

  void compare_step(const torch::Tensor& x0_float, const std::vector<int64_t>& chunk, int64_t k,
                    double analytic_c, torch::Tensor row) const;

  diffusion::DenoisingModel& model_;
  const diffusion::Schedule& schedule_;
  const CovarianceCheckRequest& request_;
  std::vector<int64_t> times_;
  int64_t steps_;
  std::vector<std::vector<int64_t>> batches_;
  std::unique_ptr<diffusion::CovarianceEstimator> ocm_mc_;
};

void Check::compare_step(const torch::Tensor& x0_float, const std::vector<int64_t>& chunk,
                         int64_t k, double analytic_c, torch::Tensor row) const {
  const int64_t t = times_[k], s = times_[k + 1];
  const torch::Tensor x0 = x0_float.to(torch::kFloat64);
  const torch::Tensor background = (x0_float <= -1).to(torch::kFloat64);
  const torch::Tensor x_t = diffused(x0_float, chunk, k);
  torch::Tensor eps, h;
  {
    torch::NoGradGuard no_grad;
    if (request_.head)
      std::tie(eps, h) = model_.eps_and_h(x_t, t);
    else  // a score-phase checkpoint: the head's columns stay at 0
      eps = model_.eps(x_t, t);
  }
  diffusion::SampleRandom probes(request_.seed, RandomPurpose::kStatistics, chunk,
                                 static_cast<uint64_t>(steps_ + k));
  const torch::Tensor c_mc =
      ocm_mc_->predict(model_, x_t, t, s, probes).posterior_variance.to(torch::kFloat64);
  const double a = schedule_.abar(t);
  const torch::Tensor c_head = h.defined()
                                   ? diffusion::posterior_variance_from_h(h, a).to(torch::kFloat64)
                                   : torch::zeros_like(c_mc);
  const torch::Tensor x0_hat =
      diffusion::predict_x0(x_t.to(torch::kFloat64), eps.to(torch::kFloat64), a);
  const torch::Tensor error = (x0 - x0_hat).square();
  const auto coefficients = diffusion::step_coefficients(schedule_, t, s);
  const double beta_tilde = coefficients.beta_tilde;
  const double k2 = coefficients.x0_coef * coefficients.x0_coef;
  // KL(N(mu~, b~) || N(mean, b~ + k^2 c)) with mu~ - mean = k (x0 - x0_hat).
  auto kl = [&](const torch::Tensor& c) {
    const torch::Tensor v = beta_tilde + k2 * c;
    return total(0.5 * (torch::log(v / beta_tilde) + (beta_tilde + k2 * error) / v - 1));
  };
  row[kHead] += total(c_head);
  row[kMonteCarlo] += total(c_mc);
  row[kAnalytic] += analytic_c * static_cast<double>(x0.numel());
  row[kSquaredError] += total(error);
  row[kDifferenceSquared] += total((c_head - c_mc).square());
  row[kMonteCarloSquared] += total(c_mc.square());
  row[kUnderestimated] += total((c_head < 0.5 * c_mc).to(torch::kFloat64));
  row[kBackgroundHead] += total(c_head * background);
  row[kBackgroundError] += total(error * background);
  row[kBackground] += total(background);
  row[kKlFixedSmall] += kl(torch::zeros_like(c_head));
  row[kKlAnalytic] += kl(torch::full_like(c_head, analytic_c));
  row[kKlHead] += kl(c_head);
  row[kKlMonteCarlo] += kl(c_mc);
}

std::vector<CovarianceCheckRow> Check::rows(const torch::Tensor& sums, double dims) const {
  std::vector<CovarianceCheckRow> rows;
  for (int64_t k = 0; k < steps_; ++k) {
    auto at = [&](Sum which) { return sums[k][which].item<double>(); };
    const double background = std::max(1.0, at(kBackground));
    CovarianceCheckRow r;
    r.t = times_[k];
    r.s = times_[k + 1];
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

}  // namespace

std::vector<CovarianceCheckRow> check_covariance(diffusion::DenoisingModel& model,
                                                 const diffusion::Schedule& schedule, int64_t count,
                                                 const ElementReader& read,
                                                 const CovarianceCheckRequest& request,
                                                 dist::Communicator& communicator) {
  if (request.steps < 2 || request.probes < 1 || count < 1 || request.batch < 1)
    throw UserError("ocm covariance",
                    "was given --steps " + std::to_string(request.steps) + ", --probes " +
                        std::to_string(request.probes) + ", -n " + std::to_string(count) +
                        ", --batch " + std::to_string(request.batch),
                    "--steps >= 2, --probes >= 1, -n >= 1 and --batch >= 1");
  const Check check(model, schedule, count, request, communicator);
  torch::Tensor sums = torch::zeros({check.steps(), kSums}, torch::kFloat64);
  check.sum_eps_squared(read, sums);
  communicator.sum_async(sums)->wait();
  const double dims = sums[0][kDimensions].item<double>();
  const std::vector<double> analytic_c = check.analytic_c(sums);
  sums.zero_();
  check.sum_comparisons(read, analytic_c, sums);
  communicator.sum_async(sums)->wait();
  return check.rows(sums, dims);
}

}  // namespace ocm::eval
