// Per-step cost of the OCM phase against the score phase, and of an OCM sampling step against a
// fixed-variance one, on the same network and batch. Prints JSON lines; see bench/README.md.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "bench/timing.h"
#include "common/config.h"
#include "common/error.h"
#include "diffusion/covariance.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "diffusion/random.h"
#include "diffusion/sampler.h"

namespace ocm::bench {
namespace {

using namespace ocm::diffusion;

std::vector<int64_t> range(int64_t begin, int64_t end) {
  std::vector<int64_t> out(end - begin);
  std::iota(out.begin(), out.end(), begin);
  return out;
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda())
    torch::cuda::synchronize();
}

std::string shape_json(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out << (i ? "," : "") << shape[i];
  return out.str() + "]";
}

int run(int argc, char** argv) {
  CLI::App app{"Benchmark OCM training and sampling steps against their baselines"};
  std::string config_path = "configs/fashion_mnist.yaml";
  std::vector<int64_t> shape = {1, 28, 28};
  int64_t batch = 32;
  int iterations = 10;
  int64_t sampling_steps = 10;
  std::string device_name = "cpu";
  app.add_option("--config", config_path, "Run config whose model section is benchmarked");
  app.add_option("--shape", shape, "Sample shape, e.g. 1 28 28")->expected(1, 3);
  app.add_option("--batch", batch, "Batch size");
  app.add_option("--iterations", iterations, "Timed iterations (median reported)");
  app.add_option("--sampling-steps", sampling_steps, "K of the timed sampler runs");
  app.add_option("--device", device_name, "cpu or cuda");
  CLI11_PARSE(app, argc, argv);

  const torch::Device device(device_name);
  const Config config = load_config(config_path);
  const Schedule schedule(config.diffusion.schedule, config.diffusion.num_timesteps);
  auto network = make_network(config, shape);
  auto head = make_head(config.model, shape);
  network->to(device);
  head->to(device);
  auto trunk = as_trunk(network);
  const auto options = torch::TensorOptions().device(device);
  const std::string common = "\"device\":\"" + device.str() +
                             "\",\"batch\":" + std::to_string(batch) +
                             ",\"shape\":" + shape_json(shape) +
                             ",\"threads\":" + std::to_string(torch::get_num_threads()) +
                             ",\"parameters\":" + std::to_string(count_parameters(*network));

  // One training step's draws (timestep, noise, one probe) with each generator, ready on the
  // device: Note [counter-based draws].
  std::map<std::string, double> draw_ms;
  for (const Generator generator : {Generator::kStream, Generator::kPhilox}) {
    const std::string name = generator_name(generator);
    draw_ms[name] = median_ms(
        2, iterations,
        [&](int step) {
          SampleRandom random(0, RandomPurpose::kTraining, range(0, batch),
                              static_cast<uint64_t>(step), generator);
          random.integers(1, schedule.num_timesteps() + 1, device);
          random.normal(shape, options);
          random.rademacher(shape, options);
        },
        [] {}, [&] { synchronize(device); });
    std::cout << "{\"bench\":\"draws\",\"generator\":\"" << name << "\"," << common
              << ",\"median_ms\":" << draw_ms[name] << "}\n";
  }
  std::cout << "{\"bench\":\"draws_ratio\"," << common
            << ",\"philox_over_stream\":" << draw_ms["philox"] / draw_ms["stream"] << "}\n";

  auto inputs = [&](int step) {
    SampleRandom random(0, RandomPurpose::kTraining, range(0, batch), static_cast<uint64_t>(step));
    return std::make_tuple(random.normal(shape, options).clamp(-1, 1),
                           random.integers(1, schedule.num_timesteps() + 1).to(device),
                           random.normal(shape, options),
                           random.rademacher(shape, options).unsqueeze(0));
  };
  network->train();
  torch::optim::Adam score_optimizer(network->parameters(), torch::optim::AdamOptions(2e-4));
  const double score_ms = median_ms(
      2, iterations,
      [&](int step) {
        auto [x0, t, noise, probes] = inputs(step);
        score_optimizer.zero_grad();
        eps_matching_loss(*trunk, schedule, x0, t, noise).backward();
        score_optimizer.step();
      },
      [] {}, [&] { synchronize(device); });
  for (auto& p : network->parameters())
    p.requires_grad_(false);
  network->eval();
  torch::optim::Adam head_optimizer(head->parameters(), torch::optim::AdamOptions(1e-4));
  const double ocm_ms = median_ms(
      2, iterations,
      [&](int step) {
        auto [x0, t, noise, probes] = inputs(step);
        head_optimizer.zero_grad();
        ocm_loss(*trunk, *head, schedule, x0, t, noise, probes).backward();
        head_optimizer.step();
      },
      [] {}, [&] { synchronize(device); });
  std::cout << "{\"bench\":\"train_step\",\"phase\":\"score\"," << common
            << ",\"median_ms\":" << score_ms << ",\"samples_per_s\":" << 1000.0 * batch / score_ms
            << "}\n";
  std::cout << "{\"bench\":\"train_step\",\"phase\":\"ocm\"," << common
            << ",\"median_ms\":" << ocm_ms << ",\"samples_per_s\":" << 1000.0 * batch / ocm_ms
            << "}\n";
  std::cout << "{\"bench\":\"train_step_ratio\"," << common
            << ",\"ocm_over_score\":" << ocm_ms / score_ms << ",\"target\":1.3}\n";

  NetworkDenoiser denoiser(trunk, head);
  SamplerOptions sampler;
  sampler.steps = sampling_steps;
  std::map<std::string, double> per_step;
  for (const std::string cov : {"fixed-small", "ocm", "ocm-mc"}) {
    auto estimator = make_estimator(cov, schedule);
    const double ms = median_ms(
        1, std::max(3, iterations / 3),
        [&](int) {
          sample(denoiser, *estimator, schedule, sampler, shape, 0, range(0, batch), options);
        },
        [] {}, [&] { synchronize(device); });
    per_step[cov] = ms / static_cast<double>(sampling_steps);
    std::cout << "{\"bench\":\"sampling_step\",\"cov\":\"" << cov << "\"," << common
              << ",\"steps\":" << sampling_steps << ",\"median_ms_per_step\":" << per_step[cov]
              << "}\n";
  }
  std::cout << "{\"bench\":\"sampling_step_ratio\"," << common
            << ",\"ocm_over_fixed\":" << per_step["ocm"] / per_step["fixed-small"]
            << ",\"ocm_mc_over_fixed\":" << per_step["ocm-mc"] / per_step["fixed-small"]
            << ",\"target\":1.05}\n";
  return 0;
}

}  // namespace
}  // namespace ocm::bench

int main(int argc, char** argv) {
  try {
    return ocm::bench::run(argc, argv);
  } catch (const ocm::UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return ocm::kExitUserError;
  }
}
