// What both phases of a training run share, and how it is set up.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "checkpoints/background_writer.h"
#include "checkpoints/layout.h"
#include "common/config.h"
#include "data/dataset.h"
#include "diffusion/random.h"
#include "diffusion/schedule.h"
#include "dist/communicator.h"
#include "dist/topology.h"
#include "trainer/fault_injection.h"
#include "trainer/metrics.h"

namespace ocm::trainer {

struct Run {
  const Config& config;
  dist::Communicator& communicator;
  int rank;
  int world;
  torch::Device device;
  bool bf16;  // Note [bf16 autocast]
  bool channels_last;
  std::string checkpoint_dir;
  std::string config_yaml;
  std::string config_hash;
  data::Dataset dataset;
  checkpoints::SampleShape sample;
  diffusion::Schedule schedule;
  Fault fault;
  // The config's for a new run, the checkpoint's for a resumed one (Note [counter-based draws]).
  diffusion::Generator generator;
  std::unique_ptr<MetricsLog> metrics;   // rank 0 only, once the run directory is prepared
  int64_t skipped = 0;                   // non-finite steps, over the whole run
  checkpoints::BackgroundWriter writer;  // rank 0 writes (Note [asynchronous checkpoints])
};

// The config sections a checkpoint's tensors depend on; resuming with others is refused.
const std::vector<std::string>& model_sections();

// A SHA-256 of the values of model_sections(): what a checkpoint records to be resumed.
std::string config_hash(const Config& config);

// Checks what the config asks of the ranks and the data, and opens the dataset. Writes nothing.
std::unique_ptr<Run> open_run(const Config& config, dist::Communicator& communicator,
                              const dist::Topology& topology);

// Logging (with per-rank files when asked), the run and checkpoint directories, the run's
// config.yaml and metrics.jsonl on rank 0; every rank returns once rank 0 is done.
void prepare_run_directory(Run& run);

}  // namespace ocm::trainer
