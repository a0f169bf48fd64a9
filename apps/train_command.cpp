// `ocm train CONFIG [--set k=v]... [--resume CHECKPOINT]`.
#include <memory>

#include <torch/torch.h>

#include "apps/command.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "dist/communicator.h"
#include "dist/topology.h"
#include "trainer/stop_request.h"
#include "trainer/trainer.h"

namespace ocm::app {
namespace train_command {
namespace {

struct TrainCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  trainer::TrainOptions train;
};

int run_training(const TrainCommandOptions& options) {
  const Config config = load_config(options.config, options.overrides);
  const dist::Topology& topology = dist::init_processes();
  // The rank log files start once train() has checked its inputs and made the run directory.
  init_logging({config.log.level, topology.rank, ""});
  torch::set_num_threads(dist::compute_threads(config.dist.threads, topology));
  const torch::Device device = trainer::training_device(config, topology);
  std::unique_ptr<dist::Communicator> communicator =
      dist::make_communicator(device, config.dist.timeout_s);
  // Errors are reported (and every rank ended) while the communicator still exists: its
  // destructor would otherwise wait for collectives the other ranks never finish.
  try {
    trainer::install_stop_handlers();
    const trainer::TrainResult result =
        trainer::train(config, options.train, *communicator, topology);
    trainer::remove_stop_handlers();
    return result == trainer::TrainResult::kStopped ? kExitStopped : 0;
  } catch (...) {
    return exit_after_error(std::current_exception());
  }
}

CommandRunner configure(CLI::App& command) {
  auto options = std::make_shared<TrainCommandOptions>();
  command.add_option("config", options->config, "YAML run config")->required();
  command.add_option("--set", options->overrides, "Override a key: section.key=value (repeatable)");
  command.add_option("--resume", options->train.resume_path,
                     "Start from this checkpoint instead of the run directory's newest valid one");
  command.footer(
      "Rerunning the same command resumes from the newest valid checkpoint of run.dir.\n"
      "Exit codes: 0 done, 2 bad input, 3 stopped by SIGTERM/SIGINT/SIGUSR1 after a checkpoint,\n"
      "4 a collective timed out (dist.timeout_s), 5 diverged (run.max_bad_steps), 1 other errors.");
  return [options]() { return run_training(*options); };
}

const CommandRegistration registration{
    {"train", "Train the score network, then the OCM head, in one run directory", configure}};

}  // namespace
}  // namespace train_command
}  // namespace ocm::app
