#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "diffusion/covariance.h"
#include "dist/communicator.h"
#include "eval/batches.h"
#include "eval/trained_model.h"

namespace ocm::eval {

// One way of sampling: the K-step sampler and the covariance its steps use.
struct SamplingSetting {
  std::string sampler = "ddpm";  // ddpm or ddim
  double eta = 0.0;              // ddim only
  std::string cov = "ocm";       // a name of diffusion::estimator_names()
  int64_t steps = 10;            // K
  std::string trajectory = "linear";
  int64_t probes = 1;      // ocm-mc only
  double cov_scale = 1.0;  // multiplies c_t (Note [c_t scale] in diffusion/covariance.cpp)
  // Images: the step into t_1 has its sigma clipped at clip_pixel * 2/255 * sqrt(pi/2), the OCM
  // and Analytic-DPM code's --clip_pixel (1 or 2 in their evaluations); 0 turns it off.
  double clip_pixel = 1.0;

  // "ddpm-ocm-K10", "ddim0.5-analytic-K5", "ddim-ocmx0.5-K5", "ddpm-ocm-K10-clip2": used in
  // file names and reports.
  std::string name() const;
};

// How a c_t scale shows in a setting's name: "" for 1, else "x" and the scale ("x0.5").
std::string cov_scale_suffix(double scale);

// Throws UserError naming the option when the setting cannot run on this model: K < 2 or more
// than N, an unknown sampler or covariance, an OCM covariance without an OCM head, fixed-large
// with DDIM, eta outside [0, 1], a negative or non-finite cov_scale or clip_pixel.
void check_setting(const SamplingSetting& setting, const TrainedModel& model);

// Note [sample bytes]
// Sample i depends only on (seed, i, setting, model): its starting noise and every step's noise
// come from its own stream (Note [per-sample randomness]) and, on the CPU, LibTorch computes
// each sample of a batch with the same arithmetic whatever the batch holds, so the bytes do not
// depend on the batch size or on how many ranks share the work (tested). GPU convolution
// algorithms may differ with the batch size; there the guarantee is up to float rounding.

// The setting's covariance estimator; `table` is used by the analytic one.
std::unique_ptr<diffusion::CovarianceEstimator> estimator_of(const SamplingSetting& setting,
                                                             const TrainedModel& model,
                                                             const diffusion::AnalyticTable* table);

// Draws the samples of `indices` in batches of at most `batch`, with one covariance estimator
// for all of them, and hands each batch to `on_batch` with the number of samples done so far.
// Images come as uint8 [n, H, W, C] ([-1, 1] mapped to 0..255), arrays as float32 [n, ...].
using SampleBatchCallback = std::function<void(const torch::Tensor& samples, int64_t done)>;
void generate_batches(TrainedModel& model, const SamplingSetting& setting,
                      const diffusion::AnalyticTable* table, const std::vector<int64_t>& indices,
                      int64_t batch, uint64_t seed, const SampleBatchCallback& on_batch);

// generate_batches' samples concatenated; `progress` is called after each batch with the number
// done.
torch::Tensor generate(TrainedModel& model, const SamplingSetting& setting,
                       const diffusion::AnalyticTable* table, const std::vector<int64_t>& indices,
                       int64_t batch, uint64_t seed,
                       const std::function<void(int64_t)>& progress = {});

// [B, C, H, W] in [-1, 1] -> uint8 [B, H, W, C].
torch::Tensor to_uint8_images(const torch::Tensor& x);

// Gamma_t of the Analytic-DPM covariance for the setting's trajectory, estimated once from
// `samples` training elements split over the ranks and kept in
// <run>/eval/analytic/<trajectory>-K<steps>.json, which later calls read instead.
diffusion::AnalyticTable analytic_table(TrainedModel& model, const SamplingSetting& setting,
                                        dist::Communicator& communicator, int64_t samples = 2048);

}  // namespace ocm::eval
