#include <algorithm>
#include <exception>
#include <iostream>
#include <map>
#include <string>

#include <torch/version.h>
#include <CLI/CLI.hpp>

#include "apps/command.h"
#include "common/error.h"
#include "dist/topology.h"
#include "ocm/build_info.h"

namespace ocm::app {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}

namespace {

std::string build_description() {
  auto yes_no = [](bool on) { return on ? "yes" : "no"; };
  std::string text = std::string("ocm ") + OCM_VERSION + " (" + OCM_BUILD_TYPE + ")\n";
  text += std::string("LibTorch ") + TORCH_VERSION + "\n";
  text += std::string("CUDA: ") + yes_no(OCM_HAVE_CUDA) + "\n";
  text += std::string("NCCL: ") + yes_no(OCM_HAVE_NCCL) +
          (OCM_HAVE_NCCL ? " (" + dist::nccl_version() + ")" : "") + "\n";
  text += std::string("MPI: ") + yes_no(OCM_HAVE_MPI) +
          (OCM_HAVE_MPI ? " (" + dist::mpi_library_version() + ")" : "");
  return text;
}

// The first line of an exception text: library messages (LibTorch's above all) append
// backtraces that bury what went wrong.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

int run(int argc, char** argv) {
  CLI::App app{
      "ocm: diffusion models with Optimal Covariance Matching, trained and evaluated "
      "on one machine or a cluster.",
      "ocm"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", build_description(), "Print the version and what was built in");

  std::map<CLI::App*, CommandRunner> runners;
  // Registration order is static-initialisation order, which the build decides; --help lists
  // the subcommands by name instead.
  std::vector<CommandSpec> specs = command_registry();
  std::sort(specs.begin(), specs.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  for (const auto& spec : specs) {
    CLI::App* command = app.add_subcommand(spec.name, spec.description);
    runners[command] = spec.configure(*command);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUserError;
  }
  const auto chosen = app.get_subcommands();
  if (chosen.empty()) {
    std::cout << app.help();
    return 0;
  }
  return runners.at(chosen.front())();
}

}  // namespace

int exit_after_error(const std::exception_ptr& error) {
  int code = kExitInternalError;
  try {
    std::rethrow_exception(error);
  } catch (const UserError& e) {
    std::cerr << "ocm: error: " << e.what() << "\n";
    code = kExitUserError;
  } catch (const RunEnded& e) {
    std::cerr << "ocm: " << e.what() << "\n";
    code = e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "ocm: internal error: " << first_line(e.what())
              << "\nThis is a bug or a broken environment, not a problem with your input; please "
                 "report it with the command line and OCM_LOG_LEVEL=debug output.\n";
  }
  std::cerr.flush();
  dist::abort_processes(code);
  return code;
}

}  // namespace ocm::app

int main(int argc, char** argv) {
  try {
    return ocm::app::run(argc, argv);
  } catch (...) {
    return ocm::app::exit_after_error(std::current_exception());
  }
}
