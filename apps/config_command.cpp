// `ocm config show FILE [--set k=v]...` and `ocm config keys`.
#include <iostream>
#include <memory>

#include "apps/command.h"
#include "common/config.h"

namespace ocm::app {
namespace config_command {
namespace {

struct ConfigOptions {
  std::string file;
  std::vector<std::string> overrides;
};

CommandRunner configure(CLI::App& command) {
  command.require_subcommand(1);
  auto options = std::make_shared<ConfigOptions>();

  CLI::App* show =
      command.add_subcommand("show", "Print the resolved config: defaults, file, overrides");
  show->add_option("file", options->file, "YAML config file")->required();
  show->add_option("--set", options->overrides, "Override a key: section.key=value (repeatable)");

  CLI::App* keys =
      command.add_subcommand("keys", "List every config key with its type, default and doc");

  return [options, show, keys]() {
    if (show->parsed())
      std::cout << to_yaml(load_config(options->file, options->overrides));
    if (keys->parsed())
      std::cout << describe_config_keys();
    return 0;
  };
}

const CommandRegistration registration{{"config", "Check and print run configs", configure}};

}  // namespace
}  // namespace config_command
}  // namespace ocm::app
