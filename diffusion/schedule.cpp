#include "diffusion/schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace ocm::diffusion {

Schedule::Schedule(const std::string& kind, int64_t num_timesteps) {
  if (num_timesteps < 2) {
    throw UserError("diffusion.num_timesteps", "is " + std::to_string(num_timesteps), "at least 2");
  }
  const int64_t n_max = num_timesteps;
  betas_.assign(n_max + 1, 0.0);
  if (kind == "linear") {
    for (int64_t n = 1; n <= n_max; ++n) {
      betas_[n] =
          1e-4 + (0.02 - 1e-4) * static_cast<double>(n - 1) / static_cast<double>(n_max - 1);
    }
  } else if (kind == "cosine") {
    const double s = 0.008;
    auto f = [&](double n) {
      const double angle = (n / static_cast<double>(n_max) + s) / (1 + s) * M_PI / 2;
      return std::cos(angle) * std::cos(angle);
    };
    for (int64_t n = 1; n <= n_max; ++n) {
      betas_[n] = std::min(1 - f(static_cast<double>(n)) / f(static_cast<double>(n - 1)), 0.999);
    }
  } else {
    throw UserError("diffusion.schedule", "is `" + kind + "`", "linear or cosine");
  }
  abar_.assign(n_max + 1, 1.0);
  for (int64_t n = 1; n <= n_max; ++n)
    abar_[n] = abar_[n - 1] * (1 - betas_[n]);
}

std::vector<int64_t> trajectory(const std::string& kind, int64_t num_steps, int64_t num_timesteps) {
  const std::string where = "--steps " + std::to_string(num_steps);
  if (num_steps < 2 || num_steps > num_timesteps) {
    throw UserError(where, "cannot make a trajectory of " + std::to_string(num_steps) + " steps",
                    "between 2 and N = " + std::to_string(num_timesteps) + " steps");
  }
  if (kind != "linear" && kind != "quadratic") {
    throw UserError("trajectory", "is `" + kind + "`", "linear or quadratic");
  }
  // Built from t = 1 upwards; where rounding would repeat a time (the dense, quadratic end), the
  // next free time is taken, so any K <= N works.
  //
  // Note [published linear trajectory]: the Analytic-DPM and OCM code builds the linear times by
  // adding (N - 1) / (K - 1) to 1.0 in doubles and rounding each sum with Python's round(), which
  // sends halves to the even integer. Rounding 1 + k (N - 1) / (K - 1) half away from zero
  // differed from theirs at 318 of the 999 K for N = 1000 (K = 5 and 25 visited 501 where they
  // visit 500), so the same sum and ties to even (nearbyint in the default rounding mode) are
  // used here: bounds and samples at K steps then visit exactly the published times.
  const double stride = static_cast<double>(num_timesteps - 1) / static_cast<double>(num_steps - 1);
  std::vector<int64_t> times;
  double linear_position = 1.0;
  for (int64_t k = 0; k < num_steps; ++k, linear_position += stride) {
    const double fraction = static_cast<double>(k) / static_cast<double>(num_steps - 1);
    const double position = kind == "linear"
                                ? linear_position
                                : 1 + fraction * fraction * static_cast<double>(num_timesteps - 1);
    const auto rounded = static_cast<int64_t>(std::nearbyint(position));
    times.push_back(times.empty() ? rounded : std::max(rounded, times.back() + 1));
  }
  if (times.back() != num_timesteps) {
    throw std::logic_error("trajectory does not end at N: " + std::to_string(times.back()));
  }
  std::reverse(times.begin(), times.end());
  times.push_back(0);
  return times;
}

}  // namespace ocm::diffusion
