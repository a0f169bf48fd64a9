#include "common/error.h"

namespace ocm {
namespace {

std::string compose(const std::string& where, const std::string& what, const std::string& expected,
                    const std::string& hint) {
  std::string message = where + ": " + what;
  if (!expected.empty())
    message += "; expected " + expected;
  message += ".";
  if (!hint.empty())
    message += " " + hint;
  return message;
}

}  // namespace

UserError::UserError(const std::string& where, const std::string& what, const std::string& expected,
                     const std::string& hint)
    : std::runtime_error(compose(where, what, expected, hint)) {}

}  // namespace ocm
