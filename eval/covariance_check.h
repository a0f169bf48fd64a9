#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <functional>

#include <torch/types.h>

#include "diffusion/model.h"
#include "diffusion/schedule.h"
#include "dist/communicator.h"
#include "eval/trained_model.h"

namespace ocm::eval {

struct CovarianceCheckRequest {
  int64_t steps = 10;   // the K-step linear trajectory whose steps t -> s are checked
  int64_t probes = 32;  // Rademacher probes behind the Monte Carlo reference
  int64_t batch = 64;
  uint64_t seed = 0;
  bool head = true;  // false for a model without an OCM head: its columns stay at 0
};

// How the covariance estimators compare at one step t -> s of the trajectory, averaged over
// every dimension of the elements checked (a fresh x_t ~ q(x_t | x0) per element and step).
struct CovarianceCheckRow {
  int64_t t = 0, s = 0;
  // Means of c_t: the head, the many-probe Monte Carlo estimate, Analytic-DPM's scalar, and the
  // realised squared error (x0 - x0_hat)^2 that c_t stands for.
  double head = 0, monte_carlo = 0, analytic = 0, squared_error = 0;
  double relative_rms = 0;      // RMS(head - monte_carlo) / RMS(monte_carlo)
  double underestimated = 0;    // share of dimensions where head < monte_carlo / 2
  double background_head = 0;   // mean head c_t where x0 = -1 (image background)
  double background_error = 0;  // mean (x0 - x0_hat)^2 there
  double background_share = 0;  // share of dimensions with x0 = -1
  // The step's KL term of the bound (nats per dimension) with each covariance.
  double kl_fixed_small = 0, kl_analytic = 0, kl_head = 0, kl_monte_carlo = 0;
};

// Note [covariance check]
// The bound of docs/maths.md section 7 charges each step KL(N(mu~, beta~) || N(mean, beta~ + k^2
// c)), whose data-dependent part is k^2 (x0 - x0_hat)^2 / (beta~ + k^2 c). So c_t is judged against
// the realised squared error of x0_hat as well as against the Hessian it was trained to match:
// this check reports both, step by step, so that a loss of the learned covariance can be traced
// to the steps, and the pixels, where it happens. Gamma_t of the analytic column is estimated
// from the same test elements. The work is split over ranks by element index and the float64
// sums are added across ranks. `read(indices)` returns those elements as x0.
std::vector<CovarianceCheckRow> check_covariance(diffusion::DenoisingModel& model,
                                                 const diffusion::Schedule& schedule, int64_t count,
                                                 const ElementReader& read,
                                                 const CovarianceCheckRequest& request,
                                                 dist::Communicator& communicator);

}  // namespace ocm::eval
