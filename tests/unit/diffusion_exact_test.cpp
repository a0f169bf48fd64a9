// The diffusion maths against closed forms, using the exact Gaussian-mixture model as the network.
#include <cmath>
#include <numeric>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "diffusion/covariance.h"
#include "diffusion/gaussian_mixture.h"
#include "diffusion/likelihood.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "diffusion/sampler.h"
#include "tests/support/gaussian_closed_form.h"

namespace ocm::diffusion {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

std::vector<int64_t> range(int64_t begin, int64_t end) {
  std::vector<int64_t> out(end - begin);
  std::iota(out.begin(), out.end(), begin);
  return out;
}

GaussianMixture diagonal_gaussian(const std::vector<double>& mean, const std::vector<double>& std,
                                  const std::string& schedule = "linear") {
  return GaussianMixture(torch::ones({1}, kDouble), torch::tensor(mean, kDouble).unsqueeze(0),
                         torch::tensor(std, kDouble).unsqueeze(0), Schedule(schedule, 1000));
}

TEST(Schedule, LinearAndCosineEndpoints) {
  const Schedule linear("linear", 1000);
  EXPECT_DOUBLE_EQ(linear.abar(0), 1.0);
  EXPECT_DOUBLE_EQ(linear.beta(1), 1e-4);
  EXPECT_DOUBLE_EQ(linear.beta(1000), 0.02);
  EXPECT_NEAR(linear.abar(1000), 4.04e-5, 1e-6);  // known value for the DDPM schedule
  const Schedule cosine("cosine", 1000);
  EXPECT_LT(cosine.abar(1000), 1e-6);
  EXPECT_GT(cosine.abar(1), 0.9999);
  for (int64_t n = 1; n <= 1000; ++n)
    EXPECT_LE(cosine.beta(n), 0.999);
  EXPECT_THROW(Schedule("quadratic", 1000), UserError);
}

TEST(Trajectory, LinearAndQuadraticTimes) {
  EXPECT_EQ(trajectory("linear", 2, 1000), (std::vector<int64_t>{1000, 1, 0}));
  EXPECT_EQ(trajectory("linear", 4, 1000), (std::vector<int64_t>{1000, 667, 334, 1, 0}));
  // Note [published linear trajectory]: these are the times of the published linear trajectory
  // (the Analytic-DPM / OCM code's _choice_steps_linear, run with Python 3), reversed. K = 5 and
  // 25 reach 500.5 exactly, where halves go to the even 500, and so does K = 11, whose five sums
  // of 99.9 round to 500.5. At N = 100, K = 21, 1 + 10 (99 / 20) = 50.5 exactly, but the summed
  // stride lands just above it, on 51.
  EXPECT_EQ(trajectory("linear", 5, 1000), (std::vector<int64_t>{1000, 750, 500, 251, 1, 0}));
  EXPECT_EQ(trajectory("linear", 25, 1000)[12], 500);
  EXPECT_EQ(trajectory("linear", 11, 1000),
            (std::vector<int64_t>{1000, 900, 800, 700, 600, 500, 401, 301, 201, 101, 1, 0}));
  EXPECT_EQ(trajectory("linear", 21, 100)[10], 51);
  const auto quadratic = trajectory("quadratic", 10, 1000);
  EXPECT_EQ(quadratic.front(), 1000);
  EXPECT_EQ(quadratic[quadratic.size() - 2], 1);
  EXPECT_LT(quadratic[8] - quadratic[9], quadratic[0] - quadratic[1]);  // denser near 0
  EXPECT_THROW(trajectory("linear", 1, 1000), UserError);
  EXPECT_THROW(trajectory("linear", 1001, 1000), UserError);
  for (const int64_t k :
       {50, 100, 200, 1000}) {  // dense enough that rounding alone would repeat times
    const auto times = trajectory("quadratic", k, 1000);
    EXPECT_EQ(static_cast<int64_t>(times.size()), k + 1);
    for (size_t i = 1; i < times.size(); ++i)
      EXPECT_LT(times[i], times[i - 1]) << k;
    EXPECT_EQ(times.front(), 1000);
  }
}

TEST(GaussianMixture, ScoreAndHessianMatchAutogradOfTheLogDensity) {
  const GaussianMixture mixture(
      torch::tensor({0.3, 0.7}, kDouble), torch::tensor({{0.5, -0.2}, {-0.4, 0.3}}, kDouble),
      torch::tensor({{0.1, 0.2}, {0.3, 0.05}}, kDouble), Schedule("linear", 1000));
  torch::manual_seed(0);
  const double a = 0.6;
  const torch::Tensor x = torch::randn({5, 2}, kDouble).requires_grad_(true);
  // log p_n(x) written out directly.
  const torch::Tensor means = torch::tensor({{0.5, -0.2}, {-0.4, 0.3}}, kDouble) * std::sqrt(a);
  const torch::Tensor vars =
      torch::tensor({{0.1, 0.2}, {0.3, 0.05}}, kDouble).square() * a + (1 - a);
  const torch::Tensor diff = x.unsqueeze(1) - means.unsqueeze(0);
  const torch::Tensor log_p =
      torch::logsumexp(torch::log(torch::tensor({0.3, 0.7}, kDouble)) -
                           0.5 * (diff.square() / vars + torch::log(2 * M_PI * vars)).sum(2),
                       1);
  const torch::Tensor grad = torch::autograd::grad({log_p.sum()}, {x}, {}, true, true)[0];
  const torch::Tensor abar = torch::tensor(a, kDouble);
  EXPECT_TRUE(torch::allclose(mixture.score(x.detach(), abar), grad.detach(), 1e-10, 1e-12));
  for (int64_t d = 0; d < 2; ++d) {
    const torch::Tensor second = torch::autograd::grad({grad.select(1, d).sum()}, {x}, {}, true)[0];
    EXPECT_TRUE(torch::allclose(mixture.hessian_diagonal(x.detach(), abar).select(1, d),
                                second.select(1, d), 1e-9, 1e-11));
  }
}

// Sample std per dimension of `n` samples.
torch::Tensor sample_std(GaussianMixture& model, const std::string& cov,
                         const SamplerOptions& options, int64_t n) {
  auto estimator = make_estimator(cov, model.schedule());
  return sample(model, *estimator, model.schedule(), options, {model.dim()}, 7, range(0, n),
                kDouble)
      .std(0);
}

TEST(Samplers, ExactCovarianceReproducesTheDataStdAndFixedSmallCollapses) {
  const std::vector<double> stds = {0.05, 0.2, 0.5};
  GaussianMixture model = diagonal_gaussian({0.1, -0.2, 0.0}, stds);
  const int64_t n = 4000;
  const double tolerance = 5 / std::sqrt(2.0 * n);  // relative standard error of a sample std, x5
  for (const auto& [kind, eta] :
       std::vector<std::pair<std::string, double>>{{"ddpm", 0.0}, {"ddim", 0.0}, {"ddim", 1.0}}) {
    for (const int64_t steps : {2, 5, 10}) {
      SCOPED_TRACE(kind + " eta=" + std::to_string(eta) + " K=" + std::to_string(steps));
      SamplerOptions options;
      options.kind = kind;
      options.eta = eta;
      options.steps = steps;
      options.clip_x0 = false;  // vector data: no image range, no 8-bit clip
      options.sigma_clip = 0;
      const torch::Tensor exact = sample_std(model, "ocm", options, n);
      const torch::Tensor fixed = sample_std(model, "fixed-small", options, n);
      for (size_t d = 0; d < stds.size(); ++d) {
        EXPECT_NEAR(exact[d].item<double>() / stds[d], 1.0, tolerance) << "dim " << d;
      }
      // Without the covariance the widest dimension comes out far too narrow.
      EXPECT_LT(fixed[2].item<double>(), 0.8 * stds[2]);
      if (steps == 2) {
        for (size_t d = 0; d < stds.size(); ++d)
          EXPECT_LT(fixed[d].item<double>(), 0.5 * stds[d]);
      }
    }
  }
}

// With eta = 1, lambda^2 is beta_tilde and the DDIM step is the DDPM step, mean and variance
// (docs/maths.md section 6): the same draws must give the same samples, up to rounding.
TEST(Samplers, DdimWithEtaOneIsDdpm) {
  GaussianMixture model = diagonal_gaussian({0.3, -0.1}, {0.2, 0.6});
  for (const std::string cov : {"fixed-small", "ocm"}) {
    for (const int64_t steps : {2, 5, 10}) {
      SCOPED_TRACE(cov + " K=" + std::to_string(steps));
      auto estimator = make_estimator(cov, model.schedule());
      SamplerOptions options;
      options.steps = steps;
      options.clip_x0 = false;
      options.sigma_clip = 0;
      options.kind = "ddpm";
      const auto ddpm =
          sample(model, *estimator, model.schedule(), options, {2}, 5, range(0, 64), kDouble);
      options.kind = "ddim";
      options.eta = 1;
      const auto ddim =
          sample(model, *estimator, model.schedule(), options, {2}, 5, range(0, 64), kDouble);
      EXPECT_LT((ddpm - ddim).abs().max().item<double>(), 1e-9);
      options.eta = 0.5;  // the control: another eta is another sampler
      const auto half =
          sample(model, *estimator, model.schedule(), options, {2}, 5, range(0, 64), kDouble);
      EXPECT_GT((ddpm - half).abs().max().item<double>(), 1e-3);
    }
  }
}

// Note [c_t scale]: at DDIM eta = 0, scale 0 is fixed-small (the same samples), scale 1 the
// estimator itself, and a scale between gives a spread between the two.
TEST(Samplers, CovarianceScaleSweepsFromFixedSmallToTheEstimator) {
  GaussianMixture model = diagonal_gaussian({0.2, -0.1}, {0.1, 0.5});
  SamplerOptions options;
  options.kind = "ddim";
  options.steps = 5;
  options.clip_x0 = false;
  options.sigma_clip = 0;
  auto draw = [&](const std::string& cov, double scale) {
    EstimatorOptions estimator_options;
    estimator_options.c_scale = scale;
    auto estimator = make_estimator(cov, model.schedule(), estimator_options);
    return sample(model, *estimator, model.schedule(), options, {2}, 3, range(0, 2000), kDouble);
  };
  const auto fixed = draw("fixed-small", 1.0);
  EXPECT_LT((draw("ocm", 0.0) - fixed).abs().max().item<double>(), 1e-12);
  const double fixed_std = fixed.std(0)[1].item<double>();
  const double half_std = draw("ocm", 0.5).std(0)[1].item<double>();
  const double exact_std = draw("ocm", 1.0).std(0)[1].item<double>();
  EXPECT_NEAR(exact_std / 0.5, 1.0, 0.1);
  EXPECT_GT(half_std, fixed_std + 0.05);
  EXPECT_LT(half_std, exact_std - 0.02);
  EXPECT_THROW(draw("ocm", -0.5), UserError);
  EXPECT_THROW(draw("ocm", std::nan("")), UserError);
  EXPECT_THROW(draw("fixed-large", 0.5), UserError);
}

TEST(Samplers, SampleBytesDoNotDependOnBatching) {
  GaussianMixture model = diagonal_gaussian({0.0, 0.1}, {0.3, 0.1});
  EstimatorOptions two_probes;
  two_probes.probes = 2;
  auto estimator = make_estimator("ocm-mc", model.schedule(), two_probes);
  SamplerOptions options;
  options.kind = "ddim";
  options.eta = 0.5;
  options.steps = 5;
  const auto all =
      sample(model, *estimator, model.schedule(), options, {2}, 11, range(0, 6), kDouble);
  const auto first =
      sample(model, *estimator, model.schedule(), options, {2}, 11, range(0, 2), kDouble);
  const auto rest =
      sample(model, *estimator, model.schedule(), options, {2}, 11, range(2, 6), kDouble);
  EXPECT_TRUE(torch::equal(all, torch::cat({first, rest})));
  const auto other_seed =
      sample(model, *estimator, model.schedule(), options, {2}, 12, range(0, 6), kDouble);
  EXPECT_FALSE(torch::equal(all, other_seed));
}

TEST(Samplers, FixedLargeIsDdpmOnlyAndClipsApply) {
  GaussianMixture model = diagonal_gaussian({0.0}, {0.5});
  auto large = make_estimator("fixed-large", model.schedule());
  SamplerOptions options;
  options.kind = "ddim";
  EXPECT_THROW(sample(model, *large, model.schedule(), options, {1}, 0, range(0, 4), kDouble),
               UserError);
  options.kind = "ddpm";
  options.clip_x0 = true;
  const auto clipped =
      sample(model, *large, model.schedule(), options, {1}, 0, range(0, 2000), kDouble);
  EXPECT_LE(clipped.abs().max().item<double>(), 1.0);
  EXPECT_THROW(make_estimator("ocm-mcc", model.schedule()), UserError);
  EXPECT_THROW(make_estimator("analytic", model.schedule()), UserError);  // needs its table
}

// A learned-sigma network that outputs eps = 0 and the variance value v everywhere.
class ConstantVariance : public DenoisingModel {
 public:
  explicit ConstantVariance(double v) : v_(v) {}
  torch::Tensor eps(const torch::Tensor& x, int64_t) override { return torch::zeros_like(x); }
  std::pair<torch::Tensor, torch::Tensor> eps_and_h(const torch::Tensor& x, int64_t) override {
    return {eps(x, 0), torch::zeros_like(x)};
  }
  std::pair<torch::Tensor, torch::Tensor> eps_and_variance(const torch::Tensor& x,
                                                           int64_t) override {
    return {eps(x, 0), torch::full_like(x, v_)};
  }

 private:
  double v_;
};

// Note [learned variance]: v interpolates the log variance between the step's own beta_tilde
// (v = -1) and beta (v = 1); the last step borrows beta_tilde from the step before it.
TEST(LearnedVariance, InterpolatesTheStepsOwnBetasInLogSpace) {
  const Schedule schedule("cosine", 1000);
  EstimatorOptions options;
  options.trajectory = trajectory("linear", 5, 1000);  // 1000, 750, 500, 251, 1, 0
  auto learned = make_estimator("learned", schedule, options);
  SampleRandom random(0, RandomPurpose::kSampling, {0});
  const torch::Tensor x = torch::zeros({1, 2}, kDouble);
  auto variance = [&](double v, int64_t t, int64_t s) {
    ConstantVariance model(v);
    return learned->predict(model, x, t, s, random).step_variance[0][0].item<double>();
  };
  auto betas = [&](int64_t t, int64_t s) {
    const double a_t = schedule.abar(t), a_s = schedule.abar(s);
    return std::pair{1 - a_t / a_s, (1 - a_s) / (1 - a_t) * (1 - a_t / a_s)};
  };
  const auto [beta, beta_tilde] = betas(750, 500);
  EXPECT_NEAR(variance(1, 750, 500), beta, 1e-12 * beta);
  EXPECT_NEAR(variance(-1, 750, 500), beta_tilde, 1e-12 * beta_tilde);
  EXPECT_NEAR(variance(0, 750, 500), std::sqrt(beta * beta_tilde), 1e-12 * beta);
  const double borrowed = betas(251, 1).second;
  EXPECT_NEAR(variance(-1, 1, 0), borrowed, 1e-12 * borrowed);
  EXPECT_NEAR(variance(1, 1, 0), betas(1, 0).first, 1e-12);

  options.trajectory = {1, 0};  // nothing above t = 1 to borrow from
  auto lonely = make_estimator("learned", schedule, options);
  ConstantVariance model(0);
  EXPECT_THROW(lonely->predict(model, x, 1, 0, random), UserError);
  options.c_scale = 0.5;
  EXPECT_THROW(make_estimator("learned", schedule, options), UserError);
  GaussianMixture no_variance = diagonal_gaussian({0.0}, {0.5});
  EXPECT_THROW(learned->predict(no_variance, torch::zeros({1, 1}, kDouble), 750, 500, random),
               UserError);
}

TEST(OcmTarget, ExactScoreTargetAveragesToTheExactHessianDiagonal) {
  GaussianMixture mixture(
      torch::full({4}, 0.25, kDouble),
      torch::tensor({{0.6, 0.6}, {0.6, -0.6}, {-0.6, 0.6}, {-0.6, -0.6}}, kDouble),
      torch::full({4, 2}, 0.08, kDouble), Schedule("linear", 1000));
  const int64_t probes = 3000;
  for (const int64_t t : {20, 100, 300, 700}) {
    SCOPED_TRACE("t=" + std::to_string(t));
    torch::manual_seed(t);
    const torch::Tensor ts = torch::full({6}, t, torch::kInt64);
    const double a = mixture.schedule().abar(t);
    const torch::Tensor x0 = torch::randn({6, 2}, kDouble) * 0.6;
    const torch::Tensor x_t =
        (std::sqrt(a) * x0 + std::sqrt(1 - a) * torch::randn({6, 2}, kDouble)).requires_grad_(true);
    const torch::Tensor eps = mixture.forward(x_t, ts).eps;
    SampleRandom random(3, RandomPurpose::kTraining, range(0, probes));
    const torch::Tensor v = random.rademacher({6, 2}, kDouble);  // [M, 6, 2]
    std::vector<torch::Tensor> per_probe;
    for (int64_t m = 0; m < probes; ++m) {
      per_probe.push_back(ocm_target(eps, x_t, torch::tensor(a, kDouble), v[m].unsqueeze(0)));
    }
    const torch::Tensor targets = torch::stack(per_probe);
    const torch::Tensor mean = targets.mean(0);
    const torch::Tensor standard_error = targets.std(0) / std::sqrt(static_cast<double>(probes));
    const torch::Tensor exact = mixture.optimal_h(x_t.detach(), ts);
    EXPECT_TRUE(((mean - exact).abs() <= 5 * standard_error + 1e-9).all().item<bool>())
        << "mean\n"
        << mean << "\nexact\n"
        << exact << "\nse\n"
        << standard_error;
  }
}

TEST(OcmTarget, NetworkTargetOverAllSignPatternsIsTheJacobianDiagonal) {
  torch::manual_seed(5);
  auto network = make_mlp({3, 16, 2});
  network->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network->parameters())
      p.normal_(0, 0.5);  // the output layer starts at zero
  }
  auto trunk = as_trunk(network);
  const torch::Tensor x = torch::randn({4, 3}, kDouble).requires_grad_(true);
  const torch::Tensor t = torch::full({4}, 250, torch::kInt64);
  const torch::Tensor eps = trunk->forward(x, t).eps;
  // Every +-1 pattern once: E[v_i v_j] = delta_ij holds exactly, so the mean is exact.
  std::vector<torch::Tensor> patterns;
  for (int code = 0; code < 8; ++code) {
    const torch::Tensor v = torch::tensor(
        {code & 1 ? 1.0 : -1.0, code & 2 ? 1.0 : -1.0, code & 4 ? 1.0 : -1.0}, kDouble);
    patterns.push_back(v.expand({4, 3}));
  }
  const double a = 0.3;
  const torch::Tensor target =
      ocm_target(eps, x, torch::tensor(a, kDouble), torch::stack(patterns));
  torch::Tensor diagonal = torch::zeros({4, 3}, kDouble);
  for (int64_t i = 0; i < 3; ++i) {
    const torch::Tensor row = torch::autograd::grad({eps.select(1, i).sum()}, {x}, {}, true)[0];
    diagonal.select(1, i).copy_(row.select(1, i));
  }
  EXPECT_TRUE(torch::allclose(target, -std::sqrt(1 - a) * diagonal, 1e-10, 1e-12))
      << target << "\n"
      << -std::sqrt(1 - a) * diagonal;
}

TEST(Likelihood, GaussianDataBoundMatchesTheClosedFormAndExactCovarianceIsTightest) {
  const std::vector<double> m = {0.2, -0.1, 0.0};
  const std::vector<double> s = {0.05, 0.2, 0.5};
  GaussianMixture model = diagonal_gaussian(m, s);
  const int64_t n = 8000;
  SampleRandom data_random(1, RandomPurpose::kStatistics, range(0, n));
  const torch::Tensor x0 = model.sample_data(data_random);
  LikelihoodOptions options;
  options.steps = 5;
  options.decoder = "gaussian";
  const auto times = trajectory("linear", 5, 1000);
  std::map<std::string, double> bound;
  for (const std::string cov : {"ocm", "fixed-small", "fixed-large"}) {
    SCOPED_TRACE(cov);
    auto estimator = make_estimator(cov, model.schedule());
    const torch::Tensor bpd =
        negative_elbo_bpd(model, *estimator, model.schedule(), options, x0, 9, range(0, n));
    const double mean = bpd.mean().item<double>();
    const double standard_error = bpd.std().item<double>() / std::sqrt(static_cast<double>(n));
    const double expected =
        closed_form_nelbo(model.schedule(), times, m, s, cov) / (3 * std::log(2.0));
    EXPECT_NEAR(mean, expected, 5 * standard_error + 1e-9) << "se " << standard_error;
    bound[cov] = expected;
  }
  EXPECT_LT(bound["ocm"], bound["fixed-small"]);
  EXPECT_LT(bound["ocm"], bound["fixed-large"]);
}

TEST(Likelihood, ImageBoundIsFiniteAndPerSample) {
  torch::manual_seed(3);
  UNetOptions options;
  options.in_channels = 1;
  options.resolution = 8;
  options.ch = 8;
  options.ch_mult = {1, 2};
  options.num_res_blocks = 1;
  options.attn_resolutions = {};
  options.dropout = 0;
  auto network = make_unet(options);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network->parameters())
      p.normal_(0, 0.05);
  }
  NetworkDenoiser model(as_trunk(network), nullptr);
  const Schedule schedule("cosine", 1000);
  const torch::Tensor images = torch::randint(0, 256, {4, 1, 8, 8}).to(torch::kFloat32) / 127.5 - 1;
  LikelihoodOptions likelihood;
  likelihood.steps = 5;
  for (const std::string cov : {"fixed-small", "fixed-large"}) {
    auto estimator = make_estimator(cov, schedule);
    const torch::Tensor all =
        negative_elbo_bpd(model, *estimator, schedule, likelihood, images, 1, range(0, 4));
    const torch::Tensor split =
        torch::cat({negative_elbo_bpd(model, *estimator, schedule, likelihood,
                                      images.slice(0, 0, 1), 1, range(0, 1)),
                    negative_elbo_bpd(model, *estimator, schedule, likelihood,
                                      images.slice(0, 1, 4), 1, range(1, 4))});
    EXPECT_TRUE(torch::isfinite(all).all().item<bool>()) << cov;
    EXPECT_TRUE((all > 0).all().item<bool>()) << all;
    // Same noise per sample; only float32 convolution rounding may differ with the batch size.
    EXPECT_TRUE(torch::allclose(all, split, 1e-5, 0)) << all << split;
  }
  auto ocm = make_estimator("ocm", schedule);
  EXPECT_THROW(negative_elbo_bpd(model, *ocm, schedule, likelihood, images, 1, range(0, 4)),
               UserError);
}

TEST(Likelihood, DiscretizedDecoderIsANormalisedDistributionOverTheBins) {
  const torch::Tensor grid = torch::arange(256, kDouble) / 127.5 - 1;
  for (const double mean : {-1.2, -0.3, 0.0, 0.77, 1.0}) {
    for (const double variance : {1e-6, 1e-3, 0.5}) {
      const torch::Tensor nll = discretized_gaussian_nll(grid, torch::full({256}, mean, kDouble),
                                                         torch::full({256}, variance, kDouble));
      EXPECT_NEAR(torch::exp(-nll).sum().item<double>(), 1.0, 1e-6) << mean << " " << variance;
    }
  }
  // A wide Gaussian over an inner bin is close to density times bin width.
  const double density_times_width =
      std::exp(-0.5 * 0.01 / 0.5) / std::sqrt(2 * M_PI * 0.5) * (2.0 / 255);
  const torch::Tensor x = torch::tensor({127.0 / 127.5 - 1}, kDouble);
  const double nll =
      discretized_gaussian_nll(x, x + 0.1, torch::full({1}, 0.5, kDouble)).item<double>();
  EXPECT_NEAR(nll, -std::log(density_times_width), 1e-4);
}

TEST(Analytic, GammaTableOfTheExactModelGivesTheTrueScalarCovariance) {
  // For isotropic Gaussian data the true Cov[x0|x_t] is the same scalar in every dimension, so
  // Analytic-DPM's c_t must equal it. (At large t, c_t = (1 - abar)/abar (1 - Gamma_t) divides a
  // Monte Carlo error by abar, so the check stays where 1 - Gamma_t is not tiny.)
  GaussianMixture model = diagonal_gaussian({0.0, 0.0}, {0.3, 0.3});
  const std::vector<int64_t> times = {100, 50, 1, 0};
  const AnalyticTable table = estimate_analytic_table(
      model, model.schedule(), times,
      [&](int64_t b) {
        SampleRandom random(2, RandomPurpose::kStatistics, range(b * 2000, (b + 1) * 2000));
        return model.sample_data(random);
      },
      4, 5);
  for (const int64_t t : {100, 50, 1}) {
    const double a = model.schedule().abar(t);
    const double c = (1 - a) / a * (1 - table.gamma.at(t));
    const double truth = 0.09 * (1 - a) / (a * 0.09 + 1 - a);
    EXPECT_NEAR(c / truth, 1.0, 0.05) << "t=" << t;
  }
}

}  // namespace
}  // namespace ocm::diffusion
