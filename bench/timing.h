#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace ocm::bench {

// Median milliseconds of body(i) over `iterations` timed runs, after `warmup` untimed ones.
// `before` runs untimed ahead of every run (a barrier across ranks); `finish` runs inside the
// timing after the body (a device synchronisation).
inline double median_ms(
    int warmup, int iterations, const std::function<void(int)>& body,
    const std::function<void()>& before = [] {}, const std::function<void()>& finish = [] {}) {
  std::vector<double> times;
  for (int i = 0; i < warmup + iterations; ++i) {
    before();
    const auto start = std::chrono::steady_clock::now();
    body(i);
    finish();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= warmup)
      times.push_back(ms);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace ocm::bench
