#pragma once

#include <torch/types.h>

#include "diffusion/model.h"
#include "diffusion/schedule.h"

namespace ocm::diffusion {

// Note [loss reductions]
// Both losses are means over the batch and over every dimension of a sample, so the learning
// rate does not depend on the image size. The random inputs (timesteps, noise, probes) are
// arguments: the caller draws them per sample (Note [per-sample randomness]).

// x_n = sqrt(abar_n) x0 + sqrt(1 - abar_n) noise, with per-sample timesteps t [B].
torch::Tensor diffuse(const Schedule& schedule, const torch::Tensor& x0, const torch::Tensor& t,
                      const torch::Tensor& noise);

// Phase 1: E || noise - eps_theta(x_t, t) ||^2.
torch::Tensor eps_matching_loss(Trunk& trunk, const Schedule& schedule, const torch::Tensor& x0,
                                const torch::Tensor& t, const torch::Tensor& noise);

// The OCM target (docs/maths.md section 4) averaged over the probes [M, B, ...]:
// (1 - abar) v * d/dx <s(x), v> with s = -eps / sqrt(1 - abar), detached. `eps` must have been
// computed from `x_t` with x_t requiring grad.
torch::Tensor ocm_target(const torch::Tensor& eps, const torch::Tensor& x_t,
                         const torch::Tensor& abar, const torch::Tensor& probes);

// Phase 2: E || h_phi(x_t, t) - target ||^2. The trunk runs once with x_t requiring grad, one
// vector-Jacobian product per probe gives the target, and the head reads the trunk's detached
// features, so only the head's parameters receive gradients.
torch::Tensor ocm_loss(Trunk& trunk, Head& head, const Schedule& schedule, const torch::Tensor& x0,
                       const torch::Tensor& t, const torch::Tensor& noise,
                       const torch::Tensor& probes);

}  // namespace ocm::diffusion
