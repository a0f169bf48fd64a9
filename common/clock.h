// Wall-clock time for progress lines and the `seconds` that results record.
#pragma once

#include <chrono>

namespace ocm {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace ocm
