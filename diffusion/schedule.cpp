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
  std::vector<int64_t> times;  // decreasing, then 0
  for (int64_t k = num_steps - 1; k >= 0; --k) {
    const double fraction = static_cast<double>(k) / static_cast<double>(num_steps - 1);
    double position;
    if (kind == "linear") {
      position = fraction;
    } else if (kind == "quadratic") {
      position = fraction * fraction;
    } else {
      throw UserError("trajectory", "is `" + kind + "`", "linear or quadratic");
    }
    const auto t =
        static_cast<int64_t>(std::llround(1 + position * static_cast<double>(num_timesteps - 1)));
    if (!times.empty() && t >= times.back()) {
      throw UserError(
          where,
          "a " + kind + " trajectory of this many steps repeats timestep " + std::to_string(t),
          "fewer steps, or the linear trajectory");
    }
    times.push_back(t);
  }
  times.push_back(0);
  return times;
}

}  // namespace ocm::diffusion
