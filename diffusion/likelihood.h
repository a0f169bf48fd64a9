#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "diffusion/covariance.h"
#include "diffusion/model.h"
#include "diffusion/schedule.h"

namespace ocm::diffusion {

struct LikelihoodOptions {
  int64_t steps = 10;
  std::string trajectory = "linear";
  // discretized: 256-bin Gaussian over [-1, 1] (uint8 images). gaussian: a continuous density,
  // for vector data, where bits/dim is a differential entropy bound.
  std::string decoder = "discretized";
  // Clip x0_hat to [-1, 1] in every step's mean and the decoder's (data in [-1, 1]).
  bool clip_x0 = false;
};

// Note [K-step likelihood]
// The negative ELBO of docs/maths.md section 7 on the K-step DDPM-type chain, per sample:
// prior KL + one Gaussian KL per step t -> s with s >= 1 + the decoder at x_{t_1}, each term
// with its own fresh x_t ~ q(x_t | x0) drawn from the sample's generator. sigma is not clipped
// inside the bound (it is a bound for the model as a density); c_t is clamped to [0, 1]. The
// decoder's variance is fixed to beta_tilde of the step 2 -> 1 of the N-step chain,
// (1 - abar_1) / (1 - abar_2) * (1 - abar_2 / abar_1), whatever the estimator, so estimators
// differ only in their KL terms. With clip_x0 (ocm eval's default for images), x0_hat is clipped
// to [-1, 1] in every mean, as the published Analytic-DPM / OCM likelihood code does (its
// evaluator builds the chain with clip_x0 = True, and its last step uses that same fixed
// variance and a 256-bin decoder): a clipped mean is still a density model of data in [-1, 1],
// and the bound's numbers are then comparable with theirs. One difference stays: the decoder's
// normal CDF is exact (erf, in float64), where theirs is the tanh approximation. For a pixel
// whose decoder mean is off by up to 2 standard deviations (about 2 grey levels) the two agree to
// 0.005 nats; off by 4 to 7 they differ by 0.26 to 3.9 nats (docs/results.md section 6); beyond,
// both reach the 1e-12 floor. The decoder term, and so this difference, is the same for every
// estimator at one K (ocm-mc aside: its probes draw from the stream that gives x_{t_1}), so it
// shifts them together and never reorders them.
//
// Returns bits per dimension [B] (float64) for x0 [B, ...] with global sample indices.
torch::Tensor negative_elbo_bpd(DenoisingModel& model, CovarianceEstimator& estimator,
                                const Schedule& schedule, const LikelihoodOptions& options,
                                const torch::Tensor& x0, uint64_t seed,
                                const std::vector<int64_t>& indices);

// The decoder's fixed variance (see the note above).
double decoder_variance(const Schedule& schedule);

// -log p(x0 | mean, variance) per element for the 256-bin discretised Gaussian, x0 on the grid
// {-1, -1 + 2/255, ..., 1}; the outer bins extend to infinity.
torch::Tensor discretized_gaussian_nll(const torch::Tensor& x0, const torch::Tensor& mean,
                                       const torch::Tensor& variance);

}  // namespace ocm::diffusion
