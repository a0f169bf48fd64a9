// `ocm classifier train --data DIR --out DIR [--steps N]`.
#include <memory>

#include "apps/command.h"
#include "apps/eval_commands.h"
#include "trainer/classifier_training.h"

namespace ocm::app {
namespace classifier_command {
namespace {

CommandRunner configure(CLI::App& command) {
  command.require_subcommand(1);
  auto o = std::make_shared<trainer::ClassifierTraining>();
  CLI::App* train = command.add_subcommand(
      "train", "Train the small CNN whose features `ocm eval --metric fd` can use");
  train->add_option("--data", o->data, "Labelled image dataset")->required();
  train->add_option("--out", o->out, "Classifier directory (rerun to resume)")->required();
  train->add_option("--steps", o->steps, "Optimizer steps")->check(CLI::PositiveNumber);
  train->add_option("--batch", o->batch, "Batch size")->check(CLI::PositiveNumber);
  train->add_option("--lr", o->lr, "Adam learning rate")->check(CLI::PositiveNumber);
  train->add_option("--seed", o->seed, "Seed of the initial weights and data order");
  return [o]() {
    start_eval_process();
    trainer::train_classifier(*o);
    return 0;
  };
}

const CommandRegistration registration{
    {"classifier", "A feature network for FD on data Inception does not suit", configure}};

}  // namespace
}  // namespace classifier_command
}  // namespace ocm::app
