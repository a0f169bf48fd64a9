// `ocm export RUN|CHECKPOINT --out FILE.pt`: the trunk (and head) as a PyTorch state_dict.
#include <iostream>
#include <memory>

#include "apps/command.h"
#include "checkpoints/layout.h"
#include "checkpoints/torch_file.h"
#include "eval/trained_model.h"

namespace ocm::app {
namespace export_command {
namespace {

struct ExportCommandOptions {
  std::string source;
  std::string out;
};

// The EMA trunk and, after the OCM phase, the EMA head, under the names the published code and
// the OCM code give them (Note [published networks]), in one state dict.
int run_export(const ExportCommandOptions& options) {
  try {
    const eval::TrainedModel model = eval::load_trained_model(options.source, torch::kCPU);
    checkpoints::NamedTensors all = checkpoints::named_parameters(*model.network);
    if (model.head) {
      const checkpoints::NamedTensors head = checkpoints::named_parameters(*model.head);
      all.names.insert(all.names.end(), head.names.begin(), head.names.end());
      all.tensors.insert(all.tensors.end(), head.tensors.begin(), head.tensors.end());
    }
    checkpoints::write_torch_file(options.out, all.names, all.tensors);
    std::cout << "wrote " << all.names.size() << " tensors (" << model.config.model.kind << " trunk"
              << (model.head ? " and " + model.config.model.head + " head" : "")
              << ", EMA weights of " << model.checkpoint_path << ") to " << options.out << "\n";
    return 0;
  } catch (...) {
    return exit_after_error(std::current_exception());
  }
}

CommandRunner configure(CLI::App& command) {
  auto options = std::make_shared<ExportCommandOptions>();
  command
      .add_option("source", options->source,
                  "A run directory (its newest valid checkpoint) or a checkpoint file")
      ->required();
  command.add_option("--out", options->out, "The .pt file to write (torch.load reads it)")
      ->required();
  return [options]() { return run_export(*options); };
}

const CommandRegistration registration{
    {"export", "Write a run's networks as a PyTorch state_dict with the published names",
     configure}};

}  // namespace
}  // namespace export_command
}  // namespace ocm::app
