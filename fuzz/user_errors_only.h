// What every harness checks besides the sanitizers: a reader answers bad bytes with a UserError
// (a clear message, exit 2 in the CLI) and with nothing else. Any other exception escapes the
// harness, libFuzzer reports it as a crash and keeps the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"

namespace ocm::fuzz {

template <typename Read>
void user_errors_only(Read&& read) {
  try {
    read();
  } catch (const UserError&) {
  }
}

inline std::string text_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace ocm::fuzz
