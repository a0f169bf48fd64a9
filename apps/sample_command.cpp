// `ocm sample RUN|CHECKPOINT [--sampler] [--cov] [--steps] [-n] [--seed] [--out] [--grid]`.
#include <memory>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "apps/command.h"
#include "apps/eval_commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/log.h"
#include "dist/communicator.h"
#include "eval/generate.h"
#include "eval/image_files.h"
#include "eval/trained_model.h"

namespace ocm::app {

EvalProcess start_eval_process(const std::string& log_level) {
  const dist::Topology& topology = dist::init_processes();
  init_logging({log_level, topology.rank, ""});
  torch::set_num_threads(dist::compute_threads(0, topology));
  const bool cuda = torch::cuda::is_available();
  return {topology,
          cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(topology.local_rank))
               : torch::Device(torch::kCPU)};
}

void add_timeout_option(CLI::App& command, double& seconds, const std::string& fallback) {
  // The range of dist.timeout_s (common/config_schema.cpp).
  command
      .add_option("--timeout", seconds,
                  "Seconds a collective may wait for the other ranks before the job is aborted "
                  "(default: " +
                      fallback + ")")
      ->check(CLI::Range(0.001, 86400.0));
}

namespace sample_command {
namespace {

struct SampleOptions {
  std::string model;
  eval::SamplingSetting setting;
  int64_t count = 64;
  uint64_t seed = 0;
  int64_t batch = 256;
  std::string out;
  std::string grid;
  double timeout = 0;
};

int run_sample(const SampleOptions& o) {
  if (o.out.empty() && o.grid.empty())
    throw UserError("ocm sample", "has neither --out nor --grid", "where to write the samples");
  if (o.count < 1)
    throw UserError("-n " + std::to_string(o.count), "asks for no samples", "at least 1");
  for (const std::string& path : {o.out, o.grid}) {
    if (!path.empty() && files::exists(path))
      throw UserError(path, "exists already", "a new file (nothing is overwritten)");
  }
  const EvalProcess process = start_eval_process();
  eval::TrainedModel model = eval::load_trained_model(o.model, process.device);
  eval::check_setting(o.setting, model);
  if (!o.out.empty())
    eval::check_samples_path(o.out, model.images);
  if (!o.grid.empty() && !model.images)
    throw UserError("--grid", "needs image data", "--out for vector data");
  auto communicator =
      dist::make_cpu_communicator(o.timeout > 0 ? o.timeout : model.config.dist.timeout_s);
  if (o.count < communicator->world_size())
    throw UserError("-n " + std::to_string(o.count),
                    "is fewer than the " + std::to_string(communicator->world_size()) + " ranks",
                    "at least one sample per rank (or fewer ranks)");
  const diffusion::AnalyticTable table = o.setting.cov == "analytic"
                                             ? eval::analytic_table(model, o.setting, *communicator)
                                             : diffusion::AnalyticTable{};
  const std::vector<int64_t> mine =
      eval::share_of(o.count, communicator->rank(), communicator->world_size());
  const torch::Tensor samples =
      eval::generate(model, o.setting, &table, mine, o.batch, o.seed, [&](int64_t done) {
        if (communicator->rank() == 0)
          spdlog::info("{}: {}/{} samples on rank 0", o.setting.name(), done, mine.size());
      });
  const torch::Tensor gathered = eval::gather_shares(samples);
  if (communicator->rank() != 0)
    return 0;
  if (!o.out.empty()) {
    eval::write_samples(o.out, gathered);
    spdlog::info("{} samples ({}) written to {}", o.count, o.setting.name(), o.out);
  }
  if (!o.grid.empty()) {
    eval::write_grid(o.grid, gathered);
    spdlog::info("grid written to {}", o.grid);
  }
  return 0;
}

CommandRunner configure(CLI::App& command) {
  auto o = std::make_shared<SampleOptions>();
  command.add_option("model", o->model, "Run directory (newest checkpoint) or checkpoint file")
      ->required();
  command.add_option("--sampler", o->setting.sampler, "ddpm or ddim")
      ->check(CLI::IsMember({"ddpm", "ddim"}));
  command.add_option("--eta", o->setting.eta, "DDIM eta in [0, 1]");
  command.add_option("--cov", o->setting.cov,
                     "fixed-small, fixed-large, analytic, ocm, ocm-mc, learned (a learned-sigma "
                     "network's own variance) or exact (data of a known mixture); default ocm");
  command.add_option("--steps", o->setting.steps, "K sampling steps");
  command.add_option("--clip-pixel", o->setting.clip_pixel,
                     "Images: clip the sigma of the step into t_1 at P * 2/255 * sqrt(pi/2) "
                     "(default 1; 0: off)");
  command.add_option("--trajectory", o->setting.trajectory, "linear or quadratic")
      ->check(CLI::IsMember({"linear", "quadratic"}));
  command.add_option("--probes", o->setting.probes, "ocm-mc: probes per step");
  command.add_option("-n", o->count, "Number of samples");
  command.add_option("--seed", o->seed, "Sample i depends only on (seed, i, settings)");
  command.add_option("--batch", o->batch, "Samples per forward pass on a rank")
      ->check(CLI::PositiveNumber);
  command.add_option("--out", o->out,
                     "File to write, in the format of its extension: .h5 (HDF5 `images` uint8 "
                     "[N, H, W, C]), .npz (`arr_0`, the same array, for the guided-diffusion "
                     "evaluator) or .png (a grid of the first 64)");
  command.add_option("--grid", o->grid, "PNG grid of the first 64 samples");
  add_timeout_option(command, o->timeout, "the run's dist.timeout_s");
  return [o]() { return run_sample(*o); };
}

const CommandRegistration registration{
    {"sample", "Draw samples from a trained run with a few-step sampler", configure}};

}  // namespace
}  // namespace sample_command
}  // namespace ocm::app
