#include "bench/reducer_bench.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include <torch/torch.h>

#include "bench/timing.h"
#include "common/config.h"
#include "common/error.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "diffusion/random.h"
#include "dist/communicator.h"
#include "dist/reducer.h"
#include "dist/topology.h"

namespace ocm::bench {
namespace {}  // namespace

void run_reducer_bench(const ReducerBenchOptions& options, std::ostream& out) {
  const dist::Topology& topology = dist::init_processes();
  if (topology.world_size < 2) {
    throw UserError("ocm bench reducer", "runs in a single process", "at least 2 ranks",
                    "Run it as `mpirun -np 2 ocm bench reducer`.");
  }
  auto communicator = dist::make_cpu_communicator();
  const Config config = load_config(options.config);
  const diffusion::Schedule schedule(config.diffusion.schedule, config.diffusion.num_timesteps);
  auto plain = diffusion::make_network(config, options.shape);
  auto reduced = diffusion::make_network(config, options.shape);
  dist::broadcast_parameters(plain->parameters(), *communicator);
  {
    torch::NoGradGuard no_grad;
    const auto from = plain->parameters();
    const auto to = reduced->parameters();
    for (size_t i = 0; i < from.size(); ++i)
      to[i].copy_(from[i]);
  }
  dist::GradientReducer reducer(reduced->parameters(), *communicator, options.bucket_bytes);
  std::vector<int64_t> indices(options.batch);
  std::iota(indices.begin(), indices.end(), topology.rank * options.batch);
  auto loss_of = [&](torch::nn::Module& network, int step) {
    diffusion::SampleRandom random(0, RandomPurpose::kTraining, indices,
                                   static_cast<uint64_t>(step + 2));
    const torch::Tensor x0 = random.normal(options.shape, torch::kFloat32).clamp(-1, 1);
    const torch::Tensor t = random.integers(1, schedule.num_timesteps() + 1);
    const torch::Tensor noise = random.normal(options.shape, torch::kFloat32);
    auto trunk = diffusion::as_trunk(
        std::dynamic_pointer_cast<torch::nn::Module>(network.shared_from_this()));
    return diffusion::eps_matching_loss(*trunk, schedule, x0, t, noise);
  };
  const double alone = median_ms(
      2, options.iterations,
      [&](int step) {
        plain->zero_grad();
        loss_of(*plain, step).backward();
      },
      dist::barrier);
  const double overlapped = median_ms(
      2, options.iterations,
      [&](int step) {
        reduced->zero_grad();
        loss_of(*reduced, step).backward();
        reducer.finish();
      },
      dist::barrier);
  const double sequential = median_ms(
      2, options.iterations,
      [&](int step) {
        plain->zero_grad();
        loss_of(*plain, step).backward();
        std::vector<torch::Tensor> grads;
        for (const auto& p : plain->parameters())
          grads.push_back(p.grad().reshape({-1}));
        torch::Tensor flat = torch::cat(grads);
        dist::allreduce_sum_blocking(flat.data_ptr<float>(), flat.numel());
      },
      dist::barrier);
  const double communication = sequential - alone;
  const double hidden =
      communication > 0 ? std::clamp((sequential - overlapped) / communication, 0.0, 1.0) : 0.0;
  if (topology.rank == 0) {
    out << "{\"bench\":\"reducer\",\"ranks\":" << topology.world_size
        << ",\"parameters\":" << diffusion::count_parameters(*plain)
        << ",\"batch_per_rank\":" << options.batch << ",\"buckets\":" << reducer.bucket_count()
        << ",\"backward_ms\":" << alone << ",\"backward_with_reducer_ms\":" << overlapped
        << ",\"backward_then_allreduce_ms\":" << sequential << ",\"hidden_share\":" << hidden
        << "}\n";
  }
}

}  // namespace ocm::bench
