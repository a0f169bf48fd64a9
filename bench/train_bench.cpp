#include "bench/train_bench.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "bench/roofline.h"
#include "common/config.h"
#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "diffusion/networks.h"
#include "dist/communicator.h"
#include "dist/topology.h"
#include "trainer/precision.h"
#include "trainer/trainer.h"

namespace ocm::bench {
namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

// Forward FLOPs per sample of the score network (Note [model FLOPs]), from a batch of two in
// fp32 on the CPU: the count depends on the shapes, not on the device.
double forward_flops_per_sample(const Config& config, const std::vector<int64_t>& shape) {
  torch::NoGradGuard no_grad;
  const auto network = diffusion::make_network(config, shape);
  network->eval();
  const auto trunk = diffusion::as_trunk(network);
  std::vector<int64_t> batch_shape = {2};
  batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
  const torch::Tensor x = torch::zeros(batch_shape);
  const torch::Tensor t = torch::full({2}, 500, torch::kInt64);
  return count_matmul_flops([&] { trunk->forward(x, t); }) / 2;
}

// The training step's FLOPs against the device's measured ceilings: three forwards' worth per
// image (Note [model FLOPs]).
nlohmann::json roofline(double forward_flops, double img_per_s, const torch::Device& device,
                        bool bf16) {
  const Ceilings c = measure_ceilings(device, bf16 ? torch::kBFloat16 : torch::kFloat32);
  const double achieved = 3 * forward_flops * img_per_s / 1e12;
  return {{"forward_gflop_per_image", forward_flops / 1e9},
          {"train_gflop_per_image", 3 * forward_flops / 1e9},
          {"achieved_tflops", achieved},
          {"matmul_ceiling_tflops", c.matmul_tflops},
          {"matmul_ceiling_n", c.matmul_size},
          {"copy_ceiling_gbs", c.copy_gbs},
          {"mfu", achieved / c.matmul_tflops}};
}

}  // namespace

void run_train_bench(const TrainBenchOptions& options, std::ostream& out) {
  const dist::Topology& topology = dist::init_processes();
  long long owner = static_cast<long long>(getpid());
  auto communicator = dist::make_cpu_communicator();
  {
    torch::Tensor pid = torch::tensor({static_cast<int64_t>(owner)}, torch::kInt64);
    communicator->broadcast(pid, 0);
    owner = pid.item<int64_t>();
  }
  const std::string dir =
      options.dir.empty()
          ? files::join(files::temp_directory(), "ocm-bench-train-" + std::to_string(owner))
          : options.dir;
  if (topology.rank == 0)
    files::remove_tree(dir);
  communicator->barrier();
  std::vector<std::string> overrides = {
      "run.dir=" + dir,
      "phases.score.steps=" + std::to_string(options.warmup + options.steps),
      "phases.score.batch_size=" + std::to_string(options.batch),
      "phases.ocm.batch_size=" + std::to_string(options.batch),
      "phases.ocm.steps=1",
      "checkpoint.every=1000000000",
      "log.every=1",
      "log.rank_files=false",
      "log.level=warn"};
  overrides.insert(overrides.end(), options.overrides.begin(), options.overrides.end());
  const Config config = load_config(options.config, overrides);
  torch::set_num_threads(dist::compute_threads(options.threads, topology));
  const data::Dataset dataset(config.data.path);
  const auto& element = dataset.manifest().element_shape;
  const std::vector<int64_t> shape = dataset.manifest().kind == "images"
                                         ? std::vector<int64_t>{element[2], element[0], element[1]}
                                         : element;
  const int64_t parameters = diffusion::count_parameters(*diffusion::make_network(config, shape));
  // Only rank 0 prints, so only it counts.
  const double forward_flops = topology.rank == 0 ? forward_flops_per_sample(config, shape) : 0;
  const torch::Device device = trainer::training_device(config, topology);
  if (device.is_cuda()) {
    const auto nccl = dist::make_communicator(device, config.dist.timeout_s);
    trainer::train(config, {}, *nccl, topology);
  } else {
    trainer::train(config, {}, *communicator, topology);
  }
  if (topology.rank == 0) {
    std::ifstream metrics(files::join(dir, "metrics.jsonl"));
    std::vector<double> step_ms, wait_pct, allreduce_ms;
    double peak_device_mb = 0;
    int64_t seen = 0;
    for (std::string line; std::getline(metrics, line);) {
      const auto record = nlohmann::json::parse(line);
      if (record.at("phase") != "score" || ++seen <= options.warmup)
        continue;
      step_ms.push_back(record.at("step_ms").get<double>());
      wait_pct.push_back(record.at("data_wait_pct").get<double>());
      allreduce_ms.push_back(record.at("allreduce_ms").get<double>());
      peak_device_mb = std::max(peak_device_mb, record.at("peak_device_mb").get<double>());
    }
    const double step = median(step_ms);
    const double img_per_s = step > 0 ? 1000.0 * options.batch / step : 0;
    nlohmann::json record{{"bench", "train"},
                          {"config", options.config},
                          {"parameters", parameters},
                          {"sample_shape", shape},
                          {"world_size", topology.world_size},
                          {"device", device.str()},
                          {"precision", trainer::uses_bf16(config, device) ? "bf16" : "fp32"},
                          {"channels_last", config.dist.channels_last},
                          {"threads_per_rank", torch::get_num_threads()},
                          {"global_batch", options.batch},
                          {"timed_steps", step_ms.size()},
                          {"median_step_ms", step},
                          {"img_per_s", img_per_s},
                          {"median_data_wait_pct", median(wait_pct)},
                          {"median_allreduce_ms", median(allreduce_ms)},
                          {"peak_device_mb", peak_device_mb}};
    // Per rank: the ceilings are one device's, so MFU compares one rank's share with them.
    record.update(roofline(forward_flops, img_per_s / topology.world_size, device,
                           trainer::uses_bf16(config, device)));
    out << record.dump() << std::endl;
    files::remove_tree(dir);
  }
  communicator->barrier();
}

}  // namespace ocm::bench
