// One optimisation step of a phase, and the cross-rank parameter check.
#pragma once

#include <cstdint>

#include "data/loader.h"
#include "dist/reducer.h"
#include "trainer/phase.h"
#include "trainer/run.h"

namespace ocm::trainer {

// What one step did, the same on every rank.
struct StepStats {
  double loss = 0;       // the global batch's mean loss
  double grad_norm = 0;  // of the averaged gradient, before clipping
  double lr = 0;
  bool applied = true;  // false: the loss or gradient was not finite and the step was skipped
  bool stop = false;    // some rank was asked to stop (Note [stopping on a signal])
  double reduce_seconds = 0;
};

// Micro-batches (forward and backward of this rank's share of `batch`), the gradient all-reduce,
// then, when loss and gradient are finite, clipping, Adam and the EMA. The step's one host
// synchronisation is reading back the summed (loss, stop flag, squared gradient norm).
StepStats train_step(Run& run, Phase& phase, dist::GradientReducer& reducer,
                     const data::Batch& batch, int64_t step);

// Every rank compares a SHA-256 of its trainable parameters with rank 0's (dist.check_every);
// throws when they differ.
void check_identical_parameters(Run& run, const Phase& phase, int64_t step);

}  // namespace ocm::trainer
