#pragma once

#include <stdexcept>
#include <string>

namespace ocm {

// Note [user errors and exit codes]
// Anything a user can get wrong (a command line, a config, a dataset, a checkpoint, a statistics
// file) is reported by throwing UserError, built from where the problem is, what is wrong and
// what was expected. `ocm` prints its message as one paragraph and exits with kExitUserError.
// Every other exception is a bug or an environment failure and exits with kExitInternalError.
// Code that calls into LibTorch, yaml-cpp or HDF5 on user input catches their exceptions and
// rethrows a UserError that says what was being read, so no raw library text is ever the only
// message.
constexpr int kExitInternalError = 1;
constexpr int kExitUserError = 2;
// `ocm train` stopped on a signal after writing a checkpoint; rerunning it resumes.
constexpr int kExitStopped = 3;
// A collective waited past dist.timeout_s: another rank stalled or died (Note [collective
// timeout]).
constexpr int kExitTimeout = 4;
// Training hit run.max_bad_steps non-finite steps in a row; the last checkpoint is intact.
constexpr int kExitDiverged = 5;

// A run that ends with one of the documented exit codes above, with its message.
class RunEnded : public std::runtime_error {
 public:
  RunEnded(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

class UserError : public std::runtime_error {
 public:
  // where: a file (with line when known), a key or an option; what: what is wrong with it;
  // expected: what would have been accepted. hint, when given, says how to fix it.
  UserError(const std::string& where, const std::string& what, const std::string& expected,
            const std::string& hint = "");
};

}  // namespace ocm
