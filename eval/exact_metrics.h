// The metrics of a run whose data come from a known mixture (eval/mixture_truth.h): how close
// its samples are to the true distribution, and how close its OCM head is to the exact answer.
#pragma once

#include "diffusion/covariance.h"
#include "dist/communicator.h"
#include "eval/generate.h"
#include "eval/report.h"
#include "eval/trained_model.h"

namespace ocm::eval {

// mmd: squared MMD of the setting's `num_samples` samples against the true distribution, mean
// and standard error over blocks (Note [block MMD]) with the kernel bandwidth of mmd_bandwidth;
// each rank takes its share of the blocks.
EvalResult mmd_result(TrainedModel& model, const SamplingSetting& setting,
                      const diffusion::AnalyticTable* table, int64_t num_samples, int64_t batch,
                      uint64_t seed, double bandwidth, dist::Communicator& communicator);

// h-error: the OCM head's relative RMS error against the exact h* = (1 - abar) diag Hess log p_t
// at the K times of the setting's trajectory, sqrt(sum (h - h*)^2 / sum h*^2) over each block of
// 250 x_t ~ q(x_t | x0), x0 drawn from the true distribution; mean and standard error over
// blocks. Reported under ddpm: it does not depend on the sampler.
EvalResult h_error_result(TrainedModel& model, const SamplingSetting& setting, int64_t num_samples,
                          uint64_t seed, dist::Communicator& communicator);

}  // namespace ocm::eval
