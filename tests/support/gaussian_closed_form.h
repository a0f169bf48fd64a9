// Closed forms of the exact Gaussian model that more than one test checks against.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "diffusion/covariance.h"
#include "diffusion/likelihood.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"

namespace ocm::diffusion {

// Closed-form expected NELBO (nats, summed over dims) of N(m, diag(s^2)) data under the exact
// model, for a DDPM chain whose step t -> s uses posterior variance c(t) (or beta when large).
inline double closed_form_nelbo(const Schedule& schedule, const std::vector<int64_t>& times,
                                const std::vector<double>& m, const std::vector<double>& s,
                                const std::string& cov) {
  double total = 0;
  const double a_n = schedule.abar(schedule.num_timesteps());
  for (size_t d = 0; d < m.size(); ++d) {
    total += 0.5 * (-std::log(1 - a_n) + (1 - a_n) + a_n * (m[d] * m[d] + s[d] * s[d]) - 1);
    auto true_c = [&](int64_t t) {
      const double a = schedule.abar(t);
      return s[d] * s[d] * (1 - a) / (a * s[d] * s[d] + 1 - a);
    };
    for (size_t k = 0; k + 2 < times.size(); ++k) {
      const auto c = step_coefficients(schedule, times[k], times[k + 1]);
      const double expected_square = c.x0_coef * c.x0_coef * true_c(times[k]);
      double v = c.beta_tilde;
      if (cov == "ocm")
        v += c.x0_coef * c.x0_coef * true_c(times[k]);
      if (cov == "fixed-large")
        v = c.beta;
      total += 0.5 * (std::log(v / c.beta_tilde) + (c.beta_tilde + expected_square) / v - 1);
    }
    const double sigma2 = decoder_variance(schedule);
    total += 0.5 * std::log(2 * M_PI * sigma2) + true_c(1) / (2 * sigma2);
  }
  return total;
}

}  // namespace ocm::diffusion
