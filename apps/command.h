#pragma once

#include <exception>
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

// Prints an escaped exception the way Note [user errors and exit codes] says, ends every rank
// of a multi-process job (so none waits in a collective for this one), and returns the exit
// code. A command that owns communication threads calls it before they are torn down.
int exit_after_error(const std::exception_ptr& error);

struct CommandRegistration {
  explicit CommandRegistration(CommandSpec spec) { command_registry().push_back(std::move(spec)); }
};

}  // namespace ocm::app
