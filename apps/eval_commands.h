#pragma once

#include <torch/types.h>
#include <CLI/CLI.hpp>

#include "dist/topology.h"

namespace ocm::app {

// What `ocm sample`, `ocm eval`, `ocm stats` and `ocm classifier` share: MPI started (a single
// process without mpirun), logging to stderr on rank 0, compute threads for this rank, and the
// device: cuda:<local rank> when CUDA is available, else the CPU.
struct EvalProcess {
  const dist::Topology& topology;
  torch::Device device;
};
EvalProcess start_eval_process(const std::string& log_level = "info");

// --timeout: how long one collective may wait for the other ranks before the job is aborted
// (Note [collective timeout]). 0, the default, means `fallback` (the run's dist.timeout_s).
void add_timeout_option(CLI::App& command, double& seconds, const std::string& fallback);

}  // namespace ocm::app
