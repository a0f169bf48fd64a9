// The two training phases: what each trains, its loss, and what its checkpoints hold.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "checkpoints/layout.h"
#include "diffusion/random.h"
#include "trainer/optimizer.h"
#include "trainer/run.h"

namespace ocm::trainer {

// One phase's trainable state and objective.
struct Phase {
  std::string name;
  const PhaseConfig* config = nullptr;
  int64_t begin = 0;  // global step at which the phase started
  int64_t end = 0;
  std::shared_ptr<torch::nn::Module> trained;
  std::string model_prefix;  // checkpoint prefixes of the trained weights and of their EMA
  std::string ema_prefix;
  NamedTensors parameters;
  std::unique_ptr<Adam> adam;
  std::unique_ptr<Ema> ema;
  // The loss of samples x0 whose per-sample draws come from `random`.
  std::function<torch::Tensor(const torch::Tensor& x0, diffusion::SampleRandom& random)> loss;
  // The tensors besides weights, EMA and Adam that the phase needs to continue.
  std::function<void(TensorMap&)> save;
};

// The score phase (eps matching) up to global step `end`; its weights, Adam and EMA come from
// `resume` when given (read from `where`), else fresh weights are broadcast from rank 0.
Phase score_phase(Run& run, int64_t end, const TensorMap* resume, const std::string& where);

// The OCM phase from global step `begin`. Its trunk is a copy of the score network holding
// `trunk_weights` (the score phase's EMA), frozen and in eval mode, so the target is the Hessian
// of the EMA model's score. The head and its Adam and EMA come from `resume` when given.
Phase ocm_phase(Run& run, int64_t begin, const std::vector<torch::Tensor>& trunk_weights,
                const TensorMap* resume, const std::string& where);

// The score network's weights stored under `prefix` in a checkpoint, in parameter order: the
// frozen trunk of an OCM-phase checkpoint (kTrunk), the EMA of a score-phase one (kEma).
std::vector<torch::Tensor> trunk_of(const Run& run, const TensorMap& checkpoint,
                                    const std::string& prefix, const std::string& where);

// Rank 0 writes the checkpoint of `phase` after `completed_steps` global steps.
void save_phase(Run& run, Phase& phase, int64_t completed_steps);

// Logs what the phase is about to do, and warns when its EMA outlives it (Note [EMA horizon]).
void announce_phase(const Run& run, const Phase& phase, int64_t start);

}  // namespace ocm::trainer
