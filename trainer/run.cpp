#include "trainer/run.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "common/log.h"
#include "common/sha256.h"
#include "diffusion/networks.h"
#include "dist/watchdog.h"
#include "trainer/precision.h"
#include "trainer/trainer.h"

namespace ocm::trainer {

torch::Device training_device(const Config& config, const dist::Topology& topology) {
  const bool cuda = torch::cuda::is_available();
  if (config.dist.device == "cuda" && !cuda) {
    throw UserError("dist.device", "is cuda, but this build or machine has no CUDA device",
                    "cpu or auto", "`ocm --version` says whether CUDA was built in.");
  }
  if (config.dist.device == "cpu" || !cuda)
    return torch::Device(torch::kCPU);
  // Each rank sees either every GPU of its node (mpirun) or only its own (srun
  // --gpus-per-task sets CUDA_VISIBLE_DEVICES per task); both map to local rank mod count.
  const int64_t gpus = static_cast<int64_t>(torch::cuda::device_count());
  if (gpus > 1 && topology.local_size > gpus) {
    throw UserError(
        "dist.device",
        std::to_string(topology.local_size) + " ranks on this node share " + std::to_string(gpus) +
            " GPUs",
        "at most one rank per GPU (NCCL cannot put two ranks on one device)",
        "Start one task per GPU (e.g. srun --ntasks-per-node=" + std::to_string(gpus) + ").");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(topology.local_rank % gpus));
}

const std::vector<std::string>& model_sections() {
  static const std::vector<std::string> sections = {"model", "diffusion"};
  return sections;
}

std::string config_hash(const Config& config) {
  const std::string values = config_values(config, model_sections());
  Sha256 hash;
  hash.update(reinterpret_cast<const uint8_t*>(values.data()), values.size());
  return hash.hex_digest();
}

namespace {

void check_batch(const PhaseConfig& phase, const std::string& section, int world) {
  if (phase.batch_size % world != 0) {
    throw UserError(section + ".batch_size",
                    "is " + std::to_string(phase.batch_size) + ", which " + std::to_string(world) +
                        " ranks cannot share equally",
                    "a multiple of the world size " + std::to_string(world));
  }
}

}  // namespace

std::unique_ptr<Run> open_run(const Config& config, dist::Communicator& communicator,
                              const dist::Topology& topology) {
  const torch::Device device = training_device(config, topology);
  const bool bf16 = uses_bf16(config, device);
  const int world = communicator.world_size();
  check_batch(config.phases.score, "phases.score", world);
  check_batch(config.phases.ocm, "phases.ocm", world);
  auto run = std::unique_ptr<Run>(
      new Run{config,
              communicator,
              communicator.rank(),
              world,
              device,
              bf16,
              config.dist.channels_last,
              files::join(config.run.dir, "checkpoints"),
              to_yaml(config),
              config_hash(config),
              data::Dataset(config.data.path),
              {},
              diffusion::Schedule(config.diffusion.schedule, config.diffusion.num_timesteps),
              fault_from_environment(),
              diffusion::generator_named(config.run.generator),
              nullptr,
              0,
              {}});
  const data::Manifest& manifest = run->dataset.manifest();
  run->sample = checkpoints::sample_shape_of(manifest.kind, manifest.element_shape);
  if (run->dataset.size(config.data.split) < 1)
    throw UserError(config.data.path, "has an empty `" + config.data.split + "` split",
                    "at least one element to train on (data.split)");
  // The head is built when the OCM phase begins; one that cannot fit the network is refused
  // here, before the score phase has spent its hours.
  diffusion::make_head(config.model, run->sample.shape);
  return run;
}

void prepare_run_directory(Run& run) {
  const std::string& dir = run.config.run.dir;
  init_logging(
      {run.config.log.level, run.rank, run.config.log.rank_files ? files::join(dir, "logs") : ""});
  if (run.rank == 0) {
    const std::string error = files::create_directories(run.checkpoint_dir);
    if (!error.empty()) {
      throw UserError(dir, "cannot be created (" + error + ")",
                      "a writable run directory (run.dir)");
    }
    // The config of the latest invocation; each checkpoint also records the one that wrote it.
    files::write_text_atomically(files::join(dir, "config.yaml"), run.config_yaml);
    run.metrics = std::make_unique<MetricsLog>(files::join(dir, "metrics.jsonl"));
  }
  const dist::CollectivePurpose purpose("after preparing the run directory");
  run.communicator.barrier();
}

}  // namespace ocm::trainer
