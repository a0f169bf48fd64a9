#include "diffusion/covariance.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"
#include "common/text.h"
#include "diffusion/gaussian_mixture.h"

namespace ocm::diffusion {
namespace {

class FixedSmall : public CovarianceEstimator {
 public:
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t,
                     SampleRandom&) override {
    torch::Tensor eps = model.eps(x_t, t);
    return {eps, torch::zeros({}, eps.options()), {}};
  }
};

class FixedLarge : public CovarianceEstimator {
 public:
  explicit FixedLarge(const Schedule& schedule) : schedule_(schedule) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t s,
                     SampleRandom&) override {
    torch::Tensor eps = model.eps(x_t, t);
    const double beta = 1 - schedule_.abar(t) / schedule_.abar(s);
    return {eps, {}, torch::full({}, beta, eps.options())};
  }

 private:
  const Schedule& schedule_;
};

class Analytic : public CovarianceEstimator {
 public:
  Analytic(const Schedule& schedule, const AnalyticTable& table)
      : schedule_(schedule), table_(table) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t,
                     SampleRandom&) override {
    const auto found = table_.gamma.find(t);
    if (found == table_.gamma.end()) {
      throw UserError("analytic covariance table", "has no Gamma for timestep " + std::to_string(t),
                      "a table computed for this trajectory");
    }
    torch::Tensor eps = model.eps(x_t, t);
    const double a = schedule_.abar(t);
    const double c = std::clamp((1 - a) / a * (1 - found->second), 0.0, 1.0);
    return {eps, torch::full({}, c, eps.options()), {}};
  }

 private:
  const Schedule& schedule_;
  const AnalyticTable& table_;
};

class LearnedHead : public CovarianceEstimator {
 public:
  explicit LearnedHead(const Schedule& schedule) : schedule_(schedule) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t,
                     SampleRandom&) override {
    auto [eps, h] = model.eps_and_h(x_t, t);
    return {eps, posterior_variance_from_h(h, schedule_.abar(t)), {}};
  }

 private:
  const Schedule& schedule_;
};

// The true distribution's posterior variance (GaussianMixture::optimal_h in closed form) with the
// trained network's eps: what a perfect OCM head would give this trunk, so the covariance is the
// only thing that differs from `ocm`.
class ExactPosterior : public CovarianceEstimator {
 public:
  ExactPosterior(const Schedule& schedule, const GaussianMixture& truth)
      : schedule_(schedule), truth_(truth) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t,
                     SampleRandom&) override {
    const torch::Tensor times = torch::full({x_t.size(0)}, t, torch::kLong);
    const torch::Tensor h = truth_.optimal_h(x_t, times);
    return {model.eps(x_t, t), posterior_variance_from_h(h, schedule_.abar(t)), {}};
  }

 private:
  const Schedule& schedule_;
  const GaussianMixture& truth_;
};

// Note [learned variance]
// Improved DDPM's own few-step baseline: a learned-sigma network outputs v in [-1, 1] besides
// eps, and the reverse step t -> s has log variance f log(beta) + (1 - f) log(beta_tilde) with
// f = (v + 1) / 2, where beta and beta_tilde are those of the step t -> s itself (improved DDPM
// respaces its schedule to the sampled times and reads v against the respaced betas). The last
// step (s = 0) has beta_tilde = 0; like improved DDPM's clipped log variance it uses the
// beta_tilde of the step before instead, from the next time of the trajectory.
class LearnedVariance : public CovarianceEstimator {
 public:
  LearnedVariance(const Schedule& schedule, std::vector<int64_t> trajectory)
      : schedule_(schedule), trajectory_(std::move(trajectory)) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t s,
                     SampleRandom&) override {
    auto [eps, v] = model.eps_and_variance(x_t, t);
    const double log_beta = std::log(1 - schedule_.abar(t) / schedule_.abar(s));
    const double log_beta_tilde = std::log(s > 0 ? beta_tilde(t, s) : beta_tilde(above(t), t));
    const torch::Tensor f = (v.to(eps.scalar_type()) + 1) / 2;
    return {eps, {}, torch::exp(f * log_beta + (1 - f) * log_beta_tilde)};
  }

 private:
  double beta_tilde(int64_t t, int64_t s) const {
    const double a_t = schedule_.abar(t), a_s = schedule_.abar(s);
    return (1 - a_s) / (1 - a_t) * (1 - a_t / a_s);
  }
  // The trajectory's next time above t.
  int64_t above(int64_t t) const {
    for (auto it = trajectory_.rbegin(); it != trajectory_.rend(); ++it) {
      if (*it > t)
        return *it;
    }
    throw UserError("--cov learned", "has no time above " + std::to_string(t) + " to clip with",
                    "a trajectory of at least 2 steps");
  }

  const Schedule& schedule_;
  std::vector<int64_t> trajectory_;
};

// The OCM estimator without training: M Rademacher probes through the network at sampling time.
class MonteCarloHessian : public CovarianceEstimator {
 public:
  MonteCarloHessian(const Schedule& schedule, int64_t probes)
      : schedule_(schedule), probes_(probes) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t,
                     SampleRandom& random) override {
    torch::AutoGradMode enable_grad(true);
    const torch::Tensor x = x_t.detach().requires_grad_(true);
    const torch::Tensor eps = model.eps(x, t);
    const double a = schedule_.abar(t);
    torch::Tensor h = torch::zeros_like(x);
    for (int64_t m = 0; m < probes_; ++m) {
      const torch::Tensor v = random.rademacher(x.sizes().slice(1), x.options());
      const torch::Tensor jtv =
          torch::autograd::grad({(eps * v).sum()}, {x}, {}, /*retain_graph=*/m + 1 < probes_)[0];
      // h = (1 - abar) diag(Hess) = -sqrt(1 - abar) diag(d eps / dx), estimated as v * (J^T v).
      h += -std::sqrt(1 - a) * v * jtv;
    }
    h /= static_cast<double>(probes_);
    return {eps.detach(), posterior_variance_from_h(h.detach(), a), {}};
  }

 private:
  const Schedule& schedule_;
  int64_t probes_;
};

// Note [c_t scale]
// `ocm eval --cov-scale S` samples with S * c_t in place of c_t. It is a diagnostic, not a
// method: it asks whether a covariance loses because its c_t is miscalibrated or because any
// diagonal noise of that size hurts. At DDIM eta = 0, c_t's term is a step's whole noise
// (docs/results.md section 4), so there S sweeps from fixed-small (S = 0, same samples) to the
// estimator itself (S = 1). The result is clamped to [0, 1] like every c_t.
class ScaledPosteriorVariance : public CovarianceEstimator {
 public:
  ScaledPosteriorVariance(std::unique_ptr<CovarianceEstimator> inner, double scale)
      : inner_(std::move(inner)), scale_(scale) {}
  Prediction predict(DenoisingModel& model, const torch::Tensor& x_t, int64_t t, int64_t s,
                     SampleRandom& random) override {
    Prediction p = inner_->predict(model, x_t, t, s, random);
    p.posterior_variance = (p.posterior_variance * scale_).clamp(0, 1);
    return p;
  }

 private:
  std::unique_ptr<CovarianceEstimator> inner_;
  double scale_;
};

std::unique_ptr<CovarianceEstimator> make_unscaled_estimator(const std::string& name,
                                                             const Schedule& schedule,
                                                             const EstimatorOptions& options) {
  if (name == "fixed-small")
    return std::make_unique<FixedSmall>();
  if (name == "fixed-large")
    return std::make_unique<FixedLarge>(schedule);
  if (name == "ocm")
    return std::make_unique<LearnedHead>(schedule);
  if (name == "learned")
    return std::make_unique<LearnedVariance>(schedule, options.trajectory);
  if (name == "exact") {
    if (options.truth == nullptr) {
      throw UserError("--cov exact", "the data's true distribution is not known",
                      "a dataset drawn from a known mixture (ocm data prepare mixture)");
    }
    return std::make_unique<ExactPosterior>(schedule, *options.truth);
  }
  if (name == "ocm-mc") {
    if (options.probes < 1) {
      throw UserError("ocm-mc probes", "is " + std::to_string(options.probes), "at least 1");
    }
    return std::make_unique<MonteCarloHessian>(schedule, options.probes);
  }
  if (name == "analytic") {
    if (options.table == nullptr) {
      throw UserError("--cov analytic", "no Gamma table was given", "a table from the run's data");
    }
    return std::make_unique<Analytic>(schedule, *options.table);
  }
  const std::string guess = closest_match(name, estimator_names());
  throw UserError("--cov " + name, "unknown covariance estimator",
                  join_alternatives(estimator_names()),
                  guess.empty() ? "" : "Did you mean `" + guess + "`?");
}

}  // namespace

const std::vector<std::string>& estimator_names() {
  static const std::vector<std::string> names = {"fixed-small", "fixed-large", "analytic", "ocm",
                                                 "ocm-mc",      "learned",     "exact"};
  return names;
}

torch::Tensor posterior_variance_from_h(const torch::Tensor& h, double abar_t) {
  return ((1 - abar_t) / abar_t * (1 + h)).clamp(0, 1);
}

void check_c_scale(double scale) {
  if (!std::isfinite(scale) || scale < 0)
    throw UserError("--cov-scale", "is " + std::to_string(scale), "a finite number >= 0");
}

std::unique_ptr<CovarianceEstimator> make_estimator(const std::string& name,
                                                    const Schedule& schedule,
                                                    const EstimatorOptions& options) {
  auto estimator = make_unscaled_estimator(name, schedule, options);
  if (options.c_scale == 1.0)
    return estimator;
  check_c_scale(options.c_scale);
  if (name == "fixed-large" || name == "learned") {
    throw UserError("--cov-scale with " + name, "has no c_t to scale",
                    "fixed-small, analytic, ocm or ocm-mc");
  }
  return std::make_unique<ScaledPosteriorVariance>(std::move(estimator), options.c_scale);
}

AnalyticTable estimate_analytic_table(DenoisingModel& model, const Schedule& schedule,
                                      const std::vector<int64_t>& times,
                                      const std::function<torch::Tensor(int64_t)>& data,
                                      int64_t batches, uint64_t seed) {
  torch::NoGradGuard no_grad;
  std::map<int64_t, double> sums;
  int64_t count = 0;
  int64_t next_index = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const torch::Tensor x0 = data(b);
    const int64_t batch = x0.size(0);
    std::vector<int64_t> indices(batch);
    for (auto& index : indices)
      index = next_index++;
    SampleRandom random(seed, RandomPurpose::kStatistics, indices);
    for (const int64_t t : times) {
      if (t == 0)
        continue;
      const double a = schedule.abar(t);
      const torch::Tensor noise = random.normal(x0.sizes().slice(1), x0.options());
      const torch::Tensor eps = model.eps(std::sqrt(a) * x0 + std::sqrt(1 - a) * noise, t);
      sums[t] += eps.to(torch::kFloat64).square().sum().item<double>();
    }
    count += x0.numel();
  }
  AnalyticTable table;
  for (const auto& [t, sum] : sums)
    table.gamma[t] = sum / static_cast<double>(count);
  return table;
}

}  // namespace ocm::diffusion
