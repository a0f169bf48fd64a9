// Evaluation maths and files: the Frechet distance against closed forms, statistics files, the
// TorchScript feature path, and the dataset bits/dim against the exact Gaussian model.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "common/sha256.h"
#include "data/dataset.h"
#include "diffusion/covariance.h"
#include "diffusion/gaussian_mixture.h"
#include "diffusion/random.h"
#include "diffusion/sampler.h"
#include "dist/communicator.h"
#include "eval/covariance_check.h"
#include "eval/evaluate.h"
#include "eval/features.h"
#include "eval/mixture_truth.h"
#include "eval/statistics.h"
#include "tests/support/gaussian_closed_form.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::eval {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

FeatureStatistics gaussian(const torch::Tensor& mean, const torch::Tensor& covariance) {
  return {mean, covariance, 1000, "test", "test"};
}

class EvalFiles : public ::testing::Test {
 protected:
  // Statistics of 50 draws of 6 features, saved as stats.h5.
  std::string save_six_feature_statistics(FeatureStatistics* saved = nullptr) const {
    torch::manual_seed(2);
    const torch::Tensor x = torch::randn({50, 6}, kDouble);
    FeatureSums sums(6);
    sums.add(x);
    const FeatureStatistics s = statistics_of(sums, "net (sha256 abc)", "data train");
    const std::string path = dir_.join("stats.h5");
    save_statistics(path, s);
    if (saved != nullptr)
      *saved = s;
    return path;
  }

  test::TempDir dir_{"ocm-eval-test"};
};

TEST(FrechetDistance, OfASetWithItselfIsZero) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({500, 16}, kDouble).matmul(torch::randn({16, 16}, kDouble));
  FeatureSums sums(16);
  sums.add(x);
  const FeatureStatistics s = statistics_of(sums, "test", "x");
  EXPECT_NEAR(frechet_distance(s, s), 0.0, 1e-9 * s.covariance.trace().item<double>());
  EXPECT_TRUE(torch::allclose(s.mean, x.mean(0), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(s.covariance, torch::cov(x.t()), 1e-10, 1e-10));
}

TEST(FrechetDistance, MatchesClosedFormsOfTwoGaussians) {
  // Commuting (diagonal) covariances: |m1 - m2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
  const torch::Tensor s1 = torch::tensor({1.0, 4.0, 0.25}, kDouble);
  const torch::Tensor s2 = torch::tensor({9.0, 1.0, 0.25}, kDouble);
  const torch::Tensor m1 = torch::tensor({0.0, 1.0, 2.0}, kDouble);
  const torch::Tensor m2 = torch::tensor({1.0, 1.0, 0.0}, kDouble);
  const double expected = 1 + 4 + (1 - 3) * (1 - 3) + (2 - 1) * (2 - 1) + 0;
  EXPECT_NEAR(frechet_distance(gaussian(m1, torch::diag(s1)), gaussian(m2, torch::diag(s2))),
              expected, 1e-10);
  // Non-commuting 2x2 covariances: for a 2x2 positive semi-definite M,
  // tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), with M = S1^(1/2) S2 S1^(1/2), so that
  // tr M = tr(S1 S2) and det M = det S1 det S2.
  const torch::Tensor a = torch::tensor({{2.0, 0.7}, {0.7, 1.0}}, kDouble);
  const torch::Tensor b = torch::tensor({{0.5, -0.3}, {-0.3, 3.0}}, kDouble);
  const double cross =
      std::sqrt(torch::matmul(a, b).trace().item<double>() +
                2 * std::sqrt(torch::det(a).item<double>() * torch::det(b).item<double>()));
  const torch::Tensor ma = torch::tensor({0.3, -0.2}, kDouble);
  const torch::Tensor mb = torch::tensor({-0.1, 0.4}, kDouble);
  const double closed = (ma - mb).square().sum().item<double>() + a.trace().item<double>() +
                        b.trace().item<double>() - 2 * cross;
  EXPECT_NEAR(frechet_distance(gaussian(ma, a), gaussian(mb, b)), closed, 1e-10);
  EXPECT_NEAR(frechet_distance(gaussian(mb, b), gaussian(ma, a)), closed, 1e-10);
}

TEST_F(EvalFiles, StatisticsFileRoundTrips) {
  FeatureStatistics s;
  const std::string path = save_six_feature_statistics(&s);
  const FeatureStatistics back = load_statistics(path);
  EXPECT_TRUE(torch::equal(back.mean, s.mean));
  EXPECT_TRUE(torch::equal(back.covariance, s.covariance));
  EXPECT_EQ(back.count, 50);
  EXPECT_EQ(back.features, "net (sha256 abc)");
  EXPECT_EQ(back.source, "data train");
}

TEST_F(EvalFiles, MissingStatisticsFileIsAUserError) {
  EXPECT_THROW(load_statistics(dir_.join("missing.h5")), UserError);
}

// Note [verified before HDF5]: without its FILE.sha256 an HDF5 file is refused unopened; with
// a matching one it reaches the parser, which refuses what is not HDF5.
TEST_F(EvalFiles, StatisticsFileThatIsNotHdf5IsAUserError) {
  const std::string junk = dir_.join("junk.h5");
  std::ofstream(junk) << "not hdf5";
  test::expect_user_error([&] { load_statistics(junk); }, {"junk.h5", "no checksum file"});
  std::ofstream(junk + ".sha256") << sha256_file(junk) << "  junk.h5\n";
  test::expect_user_error([&] { load_statistics(junk); }, {"junk.h5", "is not an HDF5 file"});
}

// A file changed after `ocm stats` wrote it no longer matches its checksum: HDF5 never sees it.
TEST_F(EvalFiles, TruncatedStatisticsFileIsAUserError) {
  const std::string path = save_six_feature_statistics();
  EXPECT_TRUE(files::is_regular_file(path + ".sha256"));
  const std::string cut = dir_.join("cut.h5");
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  std::filesystem::copy_file(path + ".sha256", cut + ".sha256");
  test::expect_user_error([&] { load_statistics(cut); }, {"cut.h5", "has sha256", "damaged"});
}

// Statistics of another feature size: the distance refuses, naming both.
TEST_F(EvalFiles, DistanceBetweenStatisticsOfOtherSizesIsAUserError) {
  FeatureStatistics s;
  save_six_feature_statistics(&s);
  FeatureSums other(4);
  other.add(torch::randn({10, 4}, kDouble));
  test::expect_user_error([&] { frechet_distance(s, statistics_of(other, "other", "other set")); },
                          {"4-dimensional"});
}

TEST_F(EvalFiles, TorchScriptFeatureNetworkIsLoadedAndRun) {
  // A scripted module with the Inception export's calling convention: uint8 [N, 3, H, W] in.
  torch::jit::Module good("Features");
  good.define(R"(
def forward(self, x, return_features: bool = False):
    y = x.float().mean(dim=[2, 3])
    if return_features:
        return torch.cat([y, y * 2.0], 1)
    return y
)");
  const std::string good_path = dir_.join("features.pt");
  good.save(good_path);
  auto network = load_feature_network(good_path, {8, 8, 1}, torch::kCPU);
  torch::Tensor images = torch::zeros({3, 8, 8, 1}, torch::kUInt8);
  images[1].fill_(10);
  images[2].fill_(255);
  const torch::Tensor f = network->features(images);
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{3, 6}));  // grey repeated to 3 channels, doubled
  EXPECT_EQ(f[1][0].item<double>(), 10.0);
  EXPECT_EQ(f[2][5].item<double>(), 510.0);
  EXPECT_EQ(network->metric(), "fd");  // not 2048-d Inception features
  EXPECT_NE(network->description().find("features.pt (sha256 "), std::string::npos);
}

// The Inception export's classifier output (Note [class probabilities]): called without
// return_features and with no_output_bias where the forward takes it; probabilities pass
// through, logits go through a softmax.
TEST_F(EvalFiles, TorchScriptClassProbabilitiesFollowTheInceptionConvention) {
  torch::jit::Module inception_like("InceptionLike");
  inception_like.define(R"(
def forward(self, x, return_features: bool = False, no_output_bias: bool = False):
    y = x.float().mean(dim=[2, 3]) / 100.0
    if return_features:
        return y
    if no_output_bias:
        return torch.softmax(y, 1)
    return y * 2.0
)");
  const std::string inception_path = dir_.join("inception_like.pt");
  inception_like.save(inception_path);
  torch::jit::Module logits("Logits");
  logits.define(R"(
def forward(self, x, return_features: bool = False):
    return x.float().mean(dim=[2, 3]) / 100.0
)");
  const std::string logits_path = dir_.join("logits.pt");
  logits.save(logits_path);
  const torch::Tensor images = torch::randint(0, 256, {4, 8, 8, 3}, torch::kUInt8);
  const torch::Tensor expected =
      torch::softmax(images.to(kDouble).mean({1, 2}).to(torch::kFloat32).to(kDouble) / 100.0, 1);
  for (const std::string& path : {inception_path, logits_path}) {
    SCOPED_TRACE(path);
    auto network = load_feature_network(path, {8, 8, 3}, torch::kCPU);
    ASSERT_TRUE(network->classifies());
    const torch::Tensor p = network->class_probabilities(images);
    ASSERT_EQ(p.sizes(), (std::vector<int64_t>{4, 3}));
    EXPECT_TRUE(torch::allclose(p, expected, 1e-6, 1e-6)) << p << expected;
  }
}

TEST_F(EvalFiles, FeatureNetworkWithoutAFeatureMatrixIsAUserError) {
  torch::jit::Module flat("Flat");
  flat.define(R"(
def forward(self, x):
    return x.float().sum()
)");
  const std::string flat_path = dir_.join("flat.pt");
  flat.save(flat_path);
  test::expect_user_error(
      [&] {
        load_feature_network(flat_path, {8, 8, 1}, torch::kCPU);
      },
      {"shape [N, D]"});
}

TEST_F(EvalFiles, FeatureFileThatIsNotTorchScriptIsAUserError) {
  const std::string junk = dir_.join("junk.pt");
  std::ofstream(junk) << "not torchscript";
  EXPECT_THROW(load_feature_network(junk, {8, 8, 1}, torch::kCPU), UserError);
}

// Data N(m, diag(s^2)) in 3 dimensions, with its exact model, and elements drawn per index.
class ExactGaussian : public ::testing::Test {
 protected:
  const std::vector<double> m = {0.2, -0.1, 0.0};
  const std::vector<double> s = {0.05, 0.2, 0.5};
  diffusion::GaussianMixture model{
      torch::ones({1}, kDouble), torch::tensor(m, kDouble).unsqueeze(0),
      torch::tensor(s, kDouble).unsqueeze(0), diffusion::Schedule("linear", 1000)};
  std::function<torch::Tensor(const std::vector<int64_t>&)> read =
      [this](const std::vector<int64_t>& indices) {
        diffusion::SampleRandom random(4, RandomPurpose::kStatistics, indices);
        return model.sample_data(random);
      };
  // The 5-step bound with the Gaussian decoder, and its closed form in bits/dim.
  static diffusion::LikelihoodOptions five_step_bound() {
    diffusion::LikelihoodOptions options;
    options.steps = 5;
    options.decoder = "gaussian";
    return options;
  }
  double closed_form_bpd(const std::string& cov) const {
    return diffusion::closed_form_nelbo(model.schedule(), diffusion::trajectory("linear", 5, 1000),
                                        m, s, cov) /
           (3 * std::log(2.0));
  }
};

TEST_F(ExactGaussian, DatasetBitsPerDimMatchesTheClosedForm) {
  const diffusion::LikelihoodOptions options = five_step_bound();
  auto communicator = dist::make_single_process_communicator();
  for (const std::string cov : {"ocm", "fixed-small", "fixed-large"}) {
    SCOPED_TRACE(cov);
    auto estimator = diffusion::make_estimator(cov, model.schedule());
    const BpdResult bpd =
        mean_bpd(model, *estimator, model.schedule(), options, 6000, read, 512, 9, *communicator);
    const double expected = closed_form_bpd(cov);
    EXPECT_EQ(bpd.count, 6000);
    EXPECT_NEAR(bpd.mean, expected, 5 * bpd.standard_error + 1e-9) << "se " << bpd.standard_error;
  }
}

// The reported standard error means what it says: over many independent evaluations (new
// data and new noise each), the closed-form expectation lies within 1.96 standard errors of
// the mean about 95% of the time (binomial sd over 300 runs: 1.3 points).
TEST_F(ExactGaussian, BitsPerDimStandardErrorCoversTheTruthAtItsStatedRate) {
  const diffusion::LikelihoodOptions options = five_step_bound();
  auto communicator = dist::make_single_process_communicator();
  auto estimator = diffusion::make_estimator("fixed-large", model.schedule());
  const double truth = closed_form_bpd("fixed-large");
  const int runs = 300;
  int covered = 0;
  for (int run = 0; run < runs; ++run) {
    ElementReader fresh_data = [&](const std::vector<int64_t>& indices) {
      diffusion::SampleRandom random(1000 + run, RandomPurpose::kStatistics, indices);
      return model.sample_data(random);
    };
    const BpdResult bpd = mean_bpd(model, *estimator, model.schedule(), options, 40, fresh_data, 40,
                                   run, *communicator);
    covered += std::abs(bpd.mean - truth) <= 1.96 * bpd.standard_error;
  }
  EXPECT_GE(covered, 0.91 * runs);
  EXPECT_LE(covered, 0.99 * runs);
}

// On the exact model of diagonal Gaussian data the Jacobian of eps is diagonal, so any number of
// probes gives the exact h, the posterior variance does not depend on x_t, and x0_hat is the
// exact posterior mean: every column of the check has a closed form.
TEST_F(ExactGaussian, CovarianceCheckMatchesItsClosedForms) {
  CovarianceCheckRequest request;
  request.steps = 5;
  request.probes = 2;
  request.batch = 1000;
  auto communicator = dist::make_single_process_communicator();
  const auto rows = check_covariance(model, model.schedule(), 6000, read, request, *communicator);
  const auto times = diffusion::trajectory("linear", 5, 1000);
  ASSERT_EQ(rows.size(), times.size() - 2);
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& r = rows[k];
    SCOPED_TRACE("t = " + std::to_string(r.t));
    ASSERT_EQ(r.t, times[k]);
    ASSERT_EQ(r.s, times[k + 1]);
    const double a = model.schedule().abar(r.t);
    const auto step = diffusion::step_coefficients(model.schedule(), r.t, r.s);
    // Means over the 3 dimensions, and the standard errors of the sampled columns: per element,
    // (x0 - x0_hat)^2 is c_d chi^2_1 (sd sqrt(2) c_d), and the KL term varies through it.
    double c = 0, kl = 0, error_variance = 0, kl_variance = 0;
    const double n = 6000, k2 = step.x0_coef * step.x0_coef;
    for (double sd : s) {
      const double c_d = sd * sd * (1 - a) / (a * sd * sd + 1 - a);
      const double v = step.beta_tilde + k2 * c_d;
      c += c_d / 3;
      kl += 0.5 * std::log(v / step.beta_tilde) / 3;
      error_variance += 2 * c_d * c_d / n / 9;
      kl_variance += 0.5 * (k2 * c_d / v) * (k2 * c_d / v) / n / 9;
    }
    EXPECT_NEAR(r.head, c, 1e-9 + 1e-6 * c);
    EXPECT_NEAR(r.monte_carlo, c, 1e-9 + 1e-6 * c);
    EXPECT_LT(r.relative_rms, 1e-6);
    EXPECT_EQ(r.underestimated, 0.0);
    EXPECT_NEAR(r.squared_error, c, 5 * std::sqrt(error_variance));
    EXPECT_NEAR(r.kl_head, kl, 5 * std::sqrt(kl_variance) + 1e-12);
    EXPECT_NEAR(r.kl_monte_carlo, r.kl_head, 1e-9);
    EXPECT_GT(r.kl_fixed_small, r.kl_head);
    // "Background" is x0 <= -1: P = Phi((-1 - m) / s) per dimension.
    double background = 0;
    for (size_t d = 0; d < m.size(); ++d)
      background += 0.5 * std::erfc((1 + m[d]) / (s[d] * std::sqrt(2.0))) / 3;
    EXPECT_NEAR(r.background_share, background, 5 * std::sqrt(background / (3 * n)));
  }
  // Gamma_t is a mean of eps_theta^2 whose Monte Carlo error (~0.01 here) swamps
  // 1 - Gamma_t = abar c / (1 - abar) at all but the last step, where it is 0.09.
  EXPECT_NEAR(rows.back().analytic, rows.back().head, 0.3 * rows.back().head);
}

// results.jsonl keeps the standard error, reads lines written before it was recorded, and
// results.md shows value ± error where there is one.
TEST_F(EvalFiles, ReportsShowEachValueWithItsStandardError) {
  test::TempDir dir("ocm-eval-report");
  TrainedModel model;
  model.checkpoint_path = "run/checkpoints/ckpt-0000000010.h5";
  model.step = 10;
  const std::string path = dir.join("results.jsonl");
  EvalResult nll{"ddpm-ocm-K5", "ddpm", "ocm", 5, "nll", 5.123, 0.0214, 100, 1.0, "data test"};
  EvalResult fd{"ddpm-ocm-K5", "ddpm", "ocm", 5, "fd", 12.5, std::nullopt, 200, 1.0, "f vs d"};
  append_result(path, model, nll);
  append_result(path, model, fd);
  std::ofstream(path, std::ios::app)  // a line from before the standard error was recorded
      << R"({"checkpoint":"run/checkpoints/ckpt-0000000010.h5","setting":"ddpm-ocm-K10",)"
      << R"("sampler":"ddpm","cov":"ocm","steps":10,"metric":"nll","value":4.5,"n":100,)"
      << R"("seconds":1.0,"features":"data test"})"
      << "\n";
  const auto results = results_of_checkpoint(path, model.checkpoint_path);
  ASSERT_EQ(results.size(), 3u);
  int with_error = 0;
  for (const auto& r : results)
    with_error += r.standard_error.has_value();
  EXPECT_EQ(with_error, 1);
  write_reports(dir.path(), model, results);
  const std::string md = test::read_text(dir.join("results.md"));
  EXPECT_NE(md.find("| 5.123 ± 0.021 | 4.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 12.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("else over the n test images"), std::string::npos) << md;
}

// Three seeds where ocm is 1.0 below fixed-small in every seed while the seeds themselves
// spread by 8: only the paired difference can see it.
TEST_F(EvalFiles, SummaryPairsSeedsAndSaysWhatIsBeyondItsUncertainty) {
  test::TempDir dir("ocm-eval-summary");
  TrainedModel model;
  model.checkpoint_path = "run/checkpoints/ckpt-0000000010.h5";
  std::vector<EvalResult> results;
  const std::vector<double> seed_offsets = {0.0, 8.0, -5.0};
  for (uint64_t seed = 0; seed < 3; ++seed) {
    for (const auto& [cov, shift] : {std::pair{"fixed-small", 1.0}, std::pair{"ocm", 0.0}}) {
      const double jitter = 0.01 * static_cast<double>(seed);  // the difference is not constant
      results.push_back({std::string("ddpm-") + cov + "-K5", "ddpm", cov, 5, "fd",
                         20 + seed_offsets[seed] + shift + (shift > 0 ? jitter : 0), std::nullopt,
                         100, 1.0, "f vs d", 0.0, 1.0, seed});
    }
  }
  write_reports(dir.path(), model, results);
  const std::string summary = test::read_text(dir.join("summary.md"));
  EXPECT_NE(summary.find("fd, ddpm, K=5: ocm is best (21 ± 3.8), 1.01 ± 0.0058 below fixed-small: "
                         "beyond its uncertainty"),
            std::string::npos)
      << summary;
  const std::string md = test::read_text(dir.join("results.md"));
  EXPECT_NE(md.find("| ddpm | ocm | -1.01 ± 0.0058 * |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ddpm | ocm | 0,1,2 | 100 | 21 ± 3.8 |"), std::string::npos) << md;

  write_reports(dir.path(), model, results, "ocm");  // the other way round
  const std::string against_ocm = test::read_text(dir.join("results.md"));
  EXPECT_NE(against_ocm.find("Difference to ocm"), std::string::npos) << against_ocm;
  EXPECT_NE(against_ocm.find("| ddpm | fixed-small | +1.01 ± 0.0058 * |"), std::string::npos)
      << against_ocm;
}

// One seed each: the difference's error combines both standard errors, and a margin inside it
// is called so.
TEST_F(EvalFiles, SummaryOfOneSeedUsesBothStandardErrors) {
  test::TempDir dir("ocm-eval-summary-one");
  TrainedModel model;
  model.checkpoint_path = "c.h5";
  const std::vector<EvalResult> results = {
      {"ddpm-analytic-K5", "ddpm", "analytic", 5, "nll", 5.0, 0.3, 100, 1.0, "d"},
      {"ddpm-ocm-K5", "ddpm", "ocm", 5, "nll", 4.8, 0.4, 100, 1.0, "d"}};
  write_reports(dir.path(), model, results);
  const std::string summary = test::read_text(dir.join("summary.md"));
  EXPECT_NE(summary.find("ocm is best (4.8 ± 0.4), 0.2 ± 0.5 below analytic: within its "
                         "uncertainty"),
            std::string::npos)
      << summary;
}

diffusion::GaussianMixture anisotropic_mixture() {
  return {torch::tensor({0.3, 0.7}, kDouble), torch::tensor({{0.5, -0.3}, {-0.4, 0.2}}, kDouble),
          torch::tensor({{0.05, 0.2}, {0.15, 0.04}}, kDouble), diffusion::Schedule("linear", 1000)};
}

// E[(x0 - E[x0 | x_t])^2 - c*(x_t) | x_t in A] = 0 for any region A: checked by Monte Carlo
// over joint draws (x0, x_t), per dimension, on two half-planes, at three times.
TEST(MixtureTruth, ExactPosteriorVarianceMatchesMonteCarlo) {
  diffusion::GaussianMixture truth = anisotropic_mixture();
  diffusion::EstimatorOptions options;
  options.truth = &truth;
  auto exact = diffusion::make_estimator("exact", truth.schedule(), options);
  const int64_t n = 40000;
  std::vector<int64_t> indices(n);
  std::iota(indices.begin(), indices.end(), 0);
  for (const int64_t t : {50, 300, 700}) {
    diffusion::SampleRandom random(5, RandomPurpose::kStatistics, indices, t);
    const torch::Tensor x0 = truth.sample_data(random);
    const double abar = truth.schedule().abar(t);
    const torch::Tensor x_t =
        std::sqrt(abar) * x0 + std::sqrt(1 - abar) * random.normal({2}, kDouble);
    const diffusion::Prediction p = exact->predict(truth, x_t, t, 0, random);
    const torch::Tensor mean = diffusion::predict_x0(x_t, p.eps, abar);
    const torch::Tensor gap = (x0 - mean).square() - p.posterior_variance;
    for (const torch::Tensor& region : {x_t.select(1, 0) > 0, x_t.select(1, 0) <= 0}) {
      const torch::Tensor in = gap.index({region});
      const torch::Tensor error = in.std(0) / std::sqrt(static_cast<double>(in.size(0)));
      const torch::Tensor z = (in.mean(0) / error).abs();
      EXPECT_LT(z.max().item<double>(), 5)
          << "t = " << t << ", gap " << in.mean(0) << ", variance " << p.posterior_variance.mean(0);
    }
  }
}

// Note [block MMD]: true draws against independent true draws sit at 0 within their error; a
// mixture whose means moved by 0.1 (two thirds of a component's larger std) is far outside it.
TEST(MixtureTruth, BlockMmdOfTrueDrawsIsAtItsNoiseFloor) {
  diffusion::GaussianMixture truth = anisotropic_mixture();
  diffusion::GaussianMixture moved{
      torch::tensor({0.3, 0.7}, kDouble), torch::tensor({{0.6, -0.3}, {-0.3, 0.2}}, kDouble),
      torch::tensor({{0.05, 0.2}, {0.15, 0.04}}, kDouble), diffusion::Schedule("linear", 1000)};
  const double bandwidth = mmd_bandwidth(truth);
  std::vector<double> same, other;
  for (int64_t b = 0; b < 40; ++b) {
    std::vector<int64_t> indices(kMmdBlock);
    std::iota(indices.begin(), indices.end(), b * kMmdBlock);
    diffusion::SampleRandom random(9, RandomPurpose::kSampling, indices);
    const torch::Tensor reference = true_draws(truth, indices, 0);
    same.push_back(unbiased_mmd2(truth.sample_data(random), reference, bandwidth));
    other.push_back(unbiased_mmd2(moved.sample_data(random), reference, bandwidth));
  }
  const auto z_score = [](const std::vector<double>& v) {
    const torch::Tensor t = torch::tensor(v, kDouble);
    return (t.mean() / (t.std() / std::sqrt(static_cast<double>(v.size())))).item<double>();
  };
  EXPECT_LT(std::abs(z_score(same)), 3.5);
  EXPECT_GT(z_score(other), 10);
}

TEST_F(EvalFiles, MixtureDatasetRecordsItsTruthAndRefusesBadSpecs) {
  test::TempDir dir("ocm-mixture-data");
  const std::string spec = dir.join("spec.json");
  std::ofstream(spec) << R"({"weights": [0.25, 0.75], "means": [[0, 1], [1, 0]],)"
                      << R"( "stds": [[0.1, 0.2], [0.3, 0.4]]})";
  write_mixture_dataset({spec, dir.join("data"), 300, 50, 7, {}});
  const data::Dataset dataset(dir.join("data"));
  ASSERT_TRUE(dataset.manifest().mixture.has_value());
  EXPECT_EQ(dataset.manifest().mixture->stds[1], (std::vector<double>{0.3, 0.4}));
  EXPECT_EQ(dataset.size("train"), 300);
  EXPECT_EQ(dataset.size("test"), 50);

  std::ofstream(spec) << R"({"weights": [0.25, 0.7], "means": [[0, 1], [1, 0]],)"
                      << R"( "stds": [[0.1, 0.2], [0.3, 0.4]]})";
  test::expect_user_error(
      [&] {
        write_mixture_dataset({spec, dir.join("bad"), 10, 10, 0, {}});
      },
      {spec, "weights", "sums to 0.95", "summing to 1"});
  std::ofstream(spec) << R"({"weights": [1], "means": [[0, 1]], "stds": [[0.1, -0.2]]})";
  test::expect_user_error(
      [&] {
        write_mixture_dataset({spec, dir.join("bad"), 10, 10, 0, {}});
      },
      {spec, "stds", "positive"});
  EXPECT_FALSE(files::exists(dir.join("bad")));
}

}  // namespace
}  // namespace ocm::eval
