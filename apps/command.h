#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ocm::app {

// Runs a parsed subcommand and returns the process exit code.
using CommandRunner = std::function<int()>;

// Note [one file per subcommand]
// Each subcommand lives in one file of apps/ that defines a static CommandRegistration: a name,
// a one-line description, and a function that adds its options to the CLI11 subcommand (binding
// them to state it owns) and returns the runner. main() knows no subcommand by name.
struct CommandSpec {
  std::string name;
  std::string description;
  std::function<CommandRunner(CLI::App& command)> configure;
};

std::vector<CommandSpec>& command_registry();

struct CommandRegistration {
  explicit CommandRegistration(CommandSpec spec) { command_registry().push_back(std::move(spec)); }
};

}  // namespace ocm::app
