#include "eval/exact_metrics.h"

#include <cmath>

#include <torch/torch.h>

#include "common/clock.h"
#include "diffusion/objectives.h"
#include "diffusion/random.h"
#include "diffusion/schedule.h"
#include "eval/batches.h"
#include "eval/mixture_truth.h"

namespace ocm::eval {
namespace {

// Mean and standard error of per-block values summed across ranks.
struct BlockMoments {
  double sum = 0, sum_squares = 0;
  int64_t blocks = 0;

  void add(double value) {
    sum += value;
    sum_squares += value * value;
    ++blocks;
  }
  std::pair<double, double> reduce(dist::Communicator& communicator) const {
    torch::Tensor totals =
        torch::tensor({sum, sum_squares, static_cast<double>(blocks)}, torch::kFloat64);
    communicator.sum_async(totals)->wait();
    const double n = totals[2].item<double>();
    const double mean = totals[0].item<double>() / n;
    const double variance =
        n > 1 ? std::max(0.0, (totals[1].item<double>() - n * mean * mean) / (n - 1)) : 0.0;
    return {mean, std::sqrt(variance / n)};
  }
};

// The global sample indices of block b of `count` samples.
std::vector<int64_t> block_indices(int64_t b, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t i = b * kMmdBlock; i < std::min(count, (b + 1) * kMmdBlock); ++i)
    out.push_back(i);
  return out;
}

// This rank's blocks of `count` samples; a last block of one sample is left out (no unbiased
// estimate exists for it).
std::vector<int64_t> my_blocks(int64_t count, dist::Communicator& communicator) {
  const int64_t blocks = count / kMmdBlock + (count % kMmdBlock > 1 ? 1 : 0);
  return share_of(blocks, communicator.rank(), communicator.world_size());
}

// The result of a block metric for `reported` (its name, sampler, covariance and K).
EvalResult block_result(const SamplingSetting& reported, const std::string& metric,
                        std::pair<double, double> mean_and_error, int64_t n, uint64_t seed,
                        Clock::time_point start, const std::string& description) {
  EvalResult r;
  r.setting = reported.name();
  r.sampler = reported.sampler;
  r.cov = reported.cov;
  r.steps = reported.steps;
  r.metric = metric;
  r.value = mean_and_error.first;
  r.standard_error = mean_and_error.second;
  r.n = n;
  r.seconds = seconds_since(start);
  r.features = description;
  r.eta = reported.eta;
  r.cov_scale = reported.cov_scale;
  r.seed = seed;
  return r;
}

}  // namespace

EvalResult mmd_result(TrainedModel& model, const SamplingSetting& setting,
                      const diffusion::AnalyticTable* table, int64_t num_samples, int64_t batch,
                      uint64_t seed, double bandwidth, dist::Communicator& communicator) {
  const auto start = Clock::now();
  BlockMoments moments;
  for (const int64_t b : my_blocks(num_samples, communicator)) {
    const std::vector<int64_t> indices = block_indices(b, num_samples);
    const torch::Tensor samples = generate(model, setting, table, indices, batch, seed);
    moments.add(unbiased_mmd2(samples, true_draws(*model.truth, indices, seed), bandwidth));
  }
  return block_result(
      setting, "mmd", moments.reduce(communicator), num_samples, seed, start,
      "Gaussian kernel, bandwidth " + std::to_string(bandwidth) + ", vs true draws");
}

EvalResult h_error_result(TrainedModel& model, const SamplingSetting& setting, int64_t num_samples,
                          uint64_t seed, dist::Communicator& communicator) {
  torch::NoGradGuard no_grad;
  const auto start = Clock::now();
  const diffusion::Schedule& schedule = *model.schedule;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(model.device);
  BlockMoments moments;
  for (const int64_t b : my_blocks(num_samples, communicator)) {
    const std::vector<int64_t> indices = block_indices(b, num_samples);
    const torch::Tensor x0 = true_draws(*model.truth, indices, seed).to(options);
    double error = 0, norm = 0;
    for (const int64_t t :
         diffusion::trajectory(setting.trajectory, setting.steps, schedule.num_timesteps())) {
      if (t == 0)
        continue;
      diffusion::SampleRandom random(seed, RandomPurpose::kStatistics, indices,
                                     static_cast<uint64_t>(t));
      const torch::Tensor times = torch::full({x0.size(0)}, t, torch::kLong);
      const torch::Tensor x_t =
          diffusion::diffuse(schedule, x0, times, random.normal({model.truth->dim()}, options));
      const torch::Tensor h = model.denoiser->eps_and_h(x_t, t).second.to(torch::kFloat64).cpu();
      const torch::Tensor exact = model.truth->optimal_h(x_t.cpu(), times).to(torch::kFloat64);
      error += (h - exact).square().sum().item<double>();
      norm += exact.square().sum().item<double>();
    }
    moments.add(std::sqrt(error / norm));
  }
  SamplingSetting reported = setting;  // h-error does not depend on the sampler
  reported.sampler = "ddpm";
  reported.eta = 0;
  return block_result(reported, "h-error", moments.reduce(communicator), num_samples, seed, start,
                      "relative RMS error of h against the exact h*");
}

}  // namespace ocm::eval
