// `ocm import SOURCE --config CONFIG --out RUN_DIR`: a published score network as a run whose
// score phase is done (Note [imported trunks]).
#include <iostream>
#include <memory>

#include "apps/command.h"
#include "common/config.h"
#include "common/files.h"
#include "trainer/import.h"

namespace ocm::app {
namespace import_command {
namespace {

struct ImportCommandOptions {
  std::string config;
  std::string out;
  std::vector<std::string> overrides;
  trainer::ImportRequest request;
};

int run_import(const ImportCommandOptions& options) {
  try {
    std::vector<std::string> overrides = options.overrides;
    overrides.push_back("run.dir=" + options.out);
    const Config config = load_config(options.config, overrides);
    const trainer::ImportResult result = trainer::import_trunk(config, options.request);
    std::cout << "imported " << result.parameters << " parameters from " << options.request.source
              << " into " << result.checkpoint << "\n";
    for (const std::string& name : result.left_initial)
      std::cout << "  not in the file, left at its initial value: " << name << "\n";
    std::cout << "next: ocm train " << files::join(options.out, "config.yaml")
              << " (the OCM phase only), or ocm eval / sample " << options.out << "\n";
    return 0;
  } catch (...) {
    return exit_after_error(std::current_exception());
  }
}

CommandRunner configure(CLI::App& command) {
  auto options = std::make_shared<ImportCommandOptions>();
  command
      .add_option("source", options->request.source,
                  "A torch.save checkpoint (PyTorch 1.6 or newer) or a .safetensors file")
      ->required();
  command.add_option("--config", options->config, "YAML config describing the network")->required();
  command.add_option("--out", options->out, "The new run directory (sets run.dir)")->required();
  command.add_option("--set", options->overrides, "Override a key: section.key=value (repeatable)");
  command.add_option("--key", options->request.key,
                     "Which state dict of the file: ema, model, 4, ... (needed when it holds "
                     "several)");
  command.add_option("--allow-missing", options->request.rules.allow_missing,
                     "Parameters under this name prefix may be absent (kept at their initial "
                     "values; repeatable)");
  command.add_option("--allow-unexpected", options->request.rules.allow_unexpected,
                     "Tensors under this name prefix in the file are ignored (repeatable)");
  command.footer(
      "Every mismatch between the file and the config's network is listed; nothing is written\n"
      "then. Exit codes: 0 done, 2 bad input, 1 other errors.");
  return [options]() { return run_import(*options); };
}

const CommandRegistration registration{
    {"import", "Import a published score network as a run ready for the OCM phase", configure}};

}  // namespace
}  // namespace import_command
}  // namespace ocm::app
