// Test 3 of the diffusion core: with the exact score as the frozen trunk, training only the head
// with the OCM loss recovers h*, and sampling with the learned head beats fixed-small.
#include <cmath>
#include <numeric>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/covariance.h"
#include "diffusion/gaussian_mixture.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "diffusion/sampler.h"

namespace ocm::diffusion {
namespace {

std::vector<int64_t> range(int64_t begin, int64_t end) {
  std::vector<int64_t> out(end - begin);
  std::iota(out.begin(), out.end(), begin);
  return out;
}

std::shared_ptr<GaussianMixture> four_gaussians() {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  return std::make_shared<GaussianMixture>(
      torch::full({4}, 0.25, f64),
      torch::tensor({{0.6, 0.6}, {0.6, -0.6}, {-0.6, 0.6}, {-0.6, -0.6}}, f64),
      torch::full({4, 2}, 0.08, f64), Schedule("linear", 1000));
}

// Squared MMD (biased estimator) with a Gaussian kernel whose bandwidth is the median pairwise
// distance of the data, the usual heuristic. (Much narrower kernels look only at the shape of each
// mode; at K = 10 a Gaussian reverse step cannot follow a bimodal posterior, and there even the
// exact covariance does not beat fixed-small.)
double mmd2(const torch::Tensor& samples, const torch::Tensor& data) {
  const double bandwidth = torch::cdist(data, data).flatten().median().item<double>();
  auto kernel = [&](const torch::Tensor& x, const torch::Tensor& y) {
    return torch::exp(-torch::cdist(x, y).square() / (2 * bandwidth * bandwidth))
        .mean()
        .item<double>();
  };
  return kernel(samples, samples) + kernel(data, data) - 2 * kernel(samples, data);
}

TEST(OcmHead, TrainedOnTheExactScoreItRecoversHStarAndBeatsFixedSmall) {
  torch::manual_seed(0);
  auto mixture = four_gaussians();
  const Schedule& schedule = mixture->schedule();
  std::shared_ptr<Head> head = make_head({"mlp", 2, GaussianMixture::kTimeEmbeddingDim, 2, 128});
  torch::optim::Adam optimizer(head->parameters(), torch::optim::AdamOptions(2e-3));
  const int64_t steps = 6000;
  const int64_t batch = 256;
  for (int64_t step = 0; step < steps; ++step) {
    SampleRandom random(1, RandomPurpose::kTraining, range(step * batch, (step + 1) * batch));
    const torch::Tensor x0 = mixture->sample_data(random).to(torch::kFloat32);
    const torch::Tensor t = random.integers(1, schedule.num_timesteps() + 1);
    const torch::Tensor noise = random.normal({2}, torch::kFloat32);
    const torch::Tensor probes = random.rademacher({2}, torch::kFloat32).unsqueeze(0);
    if (step == 2 * steps / 3) {
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(4e-4);
    }
    optimizer.zero_grad();
    ocm_loss(*mixture, *head, schedule, x0, t, noise, probes).backward();
    optimizer.step();
  }

  torch::NoGradGuard no_grad;
  // Relative RMS error of h over x_t ~ q and t ~ U{1..N}, the distribution the loss averages over.
  SampleRandom random(2, RandomPurpose::kStatistics, range(0, 20000));
  const torch::Tensor x0 = mixture->sample_data(random).to(torch::kFloat32);
  const torch::Tensor t = random.integers(1, schedule.num_timesteps() + 1);
  const torch::Tensor x_t = diffuse(schedule, x0, t, random.normal({2}, torch::kFloat32));
  const TrunkOutput out = mixture->forward(x_t, t);
  const torch::Tensor error =
      head->forward(out.features, out.time_embedding) - mixture->optimal_h(x_t, t);
  const double relative_rms =
      (error.square().mean().sqrt() / mixture->optimal_h(x_t, t).square().mean().sqrt())
          .item<double>();
  std::cout << "relative RMS error of h over t ~ U{1..N}: " << relative_rms << "\n";
  // Per band, for the record: small t has small |h*|, so its relative error is larger there.
  for (const int64_t low : {10, 50, 100, 200, 500}) {
    const torch::Tensor band = (t >= low) & (t < 2 * low);
    const torch::Tensor exact = mixture->optimal_h(x_t, t).index({band});
    std::cout << "  t in [" << low << ", " << 2 * low << "): "
              << (error.index({band}).square().mean().sqrt() / exact.square().mean().sqrt())
                     .item<double>()
              << "\n";
  }
  EXPECT_LT(relative_rms, 0.10);

  NetworkDenoiser learned(mixture, head);
  SampleRandom data_random(3, RandomPurpose::kStatistics, range(0, 2000));
  const torch::Tensor data = mixture->sample_data(data_random).to(torch::kFloat32);
  for (const std::string kind : {"ddpm", "ddim"}) {
    SamplerOptions options;
    options.kind = kind;
    options.steps = 10;
    options.clip_x0 = false;
    options.sigma_clip = 0;
    auto ocm = make_estimator("ocm", schedule);
    auto fixed = make_estimator("fixed-small", schedule);
    const double with_head = mmd2(
        sample(learned, *ocm, schedule, options, {2}, 4, range(0, 2000), torch::kFloat32), data);
    const double with_fixed = mmd2(
        sample(learned, *fixed, schedule, options, {2}, 4, range(0, 2000), torch::kFloat32), data);
    const double exact = mmd2(
        sample(*mixture, *ocm, schedule, options, {2}, 4, range(0, 2000), torch::kFloat32), data);
    std::cout << kind << " K=10 MMD^2: learned head " << with_head << ", exact h* " << exact
              << ", fixed-small " << with_fixed << "\n";
    EXPECT_LT(with_head, with_fixed) << kind;
    EXPECT_LT(exact, with_fixed) << kind;
  }
}

}  // namespace
}  // namespace ocm::diffusion
