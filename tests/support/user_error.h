// Checks that code refuses its input with a UserError (common/error.h) that says why.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"

namespace ocm::test {

// The message of the UserError that `body` throws. When it throws none, the test fails (at the
// caller's line) and the result is "". Other exceptions pass through.
inline std::string user_error_message(const std::function<void()>& body,
                                      const char* file = __builtin_FILE(),
                                      int line = __builtin_LINE()) {
  try {
    body();
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE_AT(file, line) << "expected a UserError; none was thrown";
  return "";
}

// Expects `body` to throw a UserError whose message contains each of `parts`; a failure (at the
// caller's line) names the part that is missing and prints the whole message.
inline void expect_user_error(const std::function<void()>& body,
                              const std::vector<std::string>& parts,
                              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  try {
    body();
  } catch (const UserError& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos)
        ADD_FAILURE_AT(file, line) << "the UserError does not say \"" << part << "\":\n" << message;
    }
    return;
  }
  ADD_FAILURE_AT(file, line) << "expected a UserError; none was thrown";
}

}  // namespace ocm::test
