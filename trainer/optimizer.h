#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "checkpoints/layout.h"
#include "common/config.h"

namespace ocm::trainer {

using checkpoints::NamedTensors;
using checkpoints::TensorMap;

// Note [own Adam]
// Adam and AdamW are implemented here rather than taken from torch::optim: their whole state
// (two moments per parameter and one step count) is then ours to checkpoint by name and restore
// bitwise, with no dependence on how a LibTorch version keys or serialises optimizer state. The
// update is the standard one (Kingma & Ba; Loshchilov & Hutter for the decoupled decay), in the
// same operation order as PyTorch's single-tensor implementation.
class Adam {
 public:
  Adam(NamedTensors parameters, const PhaseConfig& phase);

  // One update with learning rate `lr` from the parameters' .grad.
  void step(double lr);

  // State under "optimizer/exp_avg/<name>", "optimizer/exp_avg_sq/<name>", "optimizer/steps".
  void save(TensorMap& out) const;
  // Throws UserError (naming `where`) when a tensor is missing or has the wrong shape.
  void load(const TensorMap& in, const std::string& where);
  // Whether `in` holds an Adam state at all (an imported trunk's checkpoint does not).
  static bool stored_in(const TensorMap& in);

 private:
  NamedTensors parameters_;
  std::vector<torch::Tensor> exp_avg_;
  std::vector<torch::Tensor> exp_avg_sq_;
  double beta1_, beta2_, weight_decay_;
  bool decoupled_;
  int64_t steps_ = 0;
};

// The learning rate of optimizer step `step` (0-based): linear warmup to `phase.lr` over
// `phase.warmup` steps, then constant.
double learning_rate(const PhaseConfig& phase, int64_t step);

// The squared global norm of the .grad tensors: a float64 scalar on their device, computed
// without a host synchronisation. Ranks hold identical averaged gradients, so every rank
// computes the same value.
torch::Tensor gradient_norm_squared(const std::vector<torch::Tensor>& parameters);

// Scales every .grad by `factor`.
void scale_gradients(const std::vector<torch::Tensor>& parameters, double factor);

// An exponential moving average of parameters: ema <- decay ema + (1 - decay) p.
class Ema {
 public:
  Ema(const NamedTensors& parameters, double decay);
  void update(const std::vector<torch::Tensor>& parameters);
  const std::vector<torch::Tensor>& tensors() const { return shadow_; }

  // Under "<prefix>/<name>".
  void save(const std::string& prefix, TensorMap& out) const;
  void load(const std::string& prefix, const TensorMap& in, const std::string& where);

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadow_;
  double decay_;
};

}  // namespace ocm::trainer
