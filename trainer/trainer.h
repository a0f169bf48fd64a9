#pragma once

#include <string>

#include <torch/types.h>

#include "common/config.h"
#include "dist/communicator.h"
#include "dist/topology.h"

namespace ocm::trainer {

struct TrainOptions {
  // A checkpoint to start from; empty: the newest valid one in the run directory, if any.
  std::string resume_path;
};

enum class TrainResult {
  kFinished,  // both phases are done (possibly by an earlier invocation)
  kStopped,   // a signal asked to stop; a checkpoint of the last step was written
};

// cuda:<local rank> when dist.device asks for (or, with auto, finds) CUDA, else the CPU.
// Throws UserError when CUDA is asked for and missing.
torch::Device training_device(const Config& config, const dist::Topology& topology);

// Note [training run]
// Trains `config` in its run directory: phase `score` (eps matching) for phases.score.steps
// steps, then phase `ocm`, whose frozen trunk is the score phase's EMA weights and whose head
// and optimizer start fresh, for phases.ocm.steps more (docs/maths.md sections 3-4). Steps are
// counted over both phases; checkpoints are named by that count. An existing run directory is
// resumed from its newest valid checkpoint, so rerunning the same command continues a run. Every
// rank calls this with the same config; `communicator` connects them.
TrainResult train(const Config& config, const TrainOptions& options,
                  dist::Communicator& communicator, const dist::Topology& topology);

}  // namespace ocm::trainer
