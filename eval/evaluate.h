#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffusion/likelihood.h"
#include "dist/communicator.h"
#include "eval/generate.h"
#include "eval/report.h"
#include "eval/trained_model.h"

namespace ocm::eval {

struct EvalRequest {
  std::vector<int64_t> steps = {5, 10, 25};
  std::vector<std::string> samplers = {"ddpm", "ddim"};
  std::vector<std::string> covs = {"fixed-small", "analytic", "ocm"};
  // fid, fd, is, pr (precision and recall), nll, mmd, h-error
  std::vector<std::string> metrics = {"fd", "nll"};
  double eta = 0.0;
  double cov_scale = 1.0;   // multiplies c_t, a calibration diagnostic (Note [c_t scale])
  double clip_pixel = 1.0;  // SamplingSetting::clip_pixel
  std::string trajectory = "linear";
  int64_t num_samples = 50000;  // generated per setting for fid / fd
  std::string features;         // feature network (fid / fd)
  std::string reference;        // statistics file; default: computed from the training split
  int64_t nll_samples = 0;      // test elements for nll (0: the whole test split)
  bool nll_unclipped =
      false;  // images: leave x0_hat unclipped in the bound (Note [K-step likelihood])
  int64_t batch = 256;
  // fid / fd / is / pr / mmd are measured once per seed, each seed's samples independent of the
  // others' and, within a seed, every covariance's sample i driven by the same noise (Note [sample
  // bytes]), so differences between covariances are paired. nll and h-error use the first.
  std::vector<uint64_t> seeds = {0};
  std::string baseline = "fixed-small";  // what results.md's differences are taken against
  int64_t grid = 64;                     // samples in each setting's PNG grid
  bool save_samples = false;             // fid/fd/is/pr samples to eval/samples/<setting>.npz
  int64_t analytic_samples = 2048;       // training elements behind each Analytic-DPM table
  int64_t is_splits = 10;                // the Inception Score's splits (Note [Inception Score])

  bool wants(const std::string& metric) const;
  // Whether a metric of the features pass is asked for: fid, fd, is or pr.
  bool wants_features() const;
};

// Mean bits/dim of the K-step bound over `count` elements, each rank taking its contiguous share
// of indices [0, count) in batches; `read(indices)` returns those elements as x0. The per-sample
// values are summed in float64 across ranks.
struct BpdResult {
  double mean = 0;
  double standard_error = 0;
  int64_t count = 0;
};
BpdResult mean_bpd(diffusion::DenoisingModel& model, diffusion::CovarianceEstimator& estimator,
                   const diffusion::Schedule& schedule, const diffusion::LikelihoodOptions& options,
                   int64_t count, const ElementReader& read, int64_t batch, uint64_t seed,
                   dist::Communicator& communicator);

// Note [evaluation grid]
// Every (sampler, covariance, K) of the request is checked before any work starts. fid, fd, is
// and pr come from one pass of the feature network over each setting's samples (Note [features
// pass]). nll is the K-step bound of the DDPM-type chain (docs/maths.md
// section 7) over the test split divided among the ranks; it does not depend on the sampler,
// so it is computed once per (covariance, K) and reported under ddpm. Results are appended to
// <run>/eval/results.jsonl as they come; at the end, results.md and one plot per metric are
// rewritten from every result recorded for this checkpoint (the latest per setting and metric,
// so several invocations build one report), and each setting of this invocation gets a grid.
std::vector<EvalResult> evaluate(TrainedModel& model, const EvalRequest& request,
                                 dist::Communicator& communicator);

}  // namespace ocm::eval
