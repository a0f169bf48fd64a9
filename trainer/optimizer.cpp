#include "trainer/optimizer.h"

#include <cmath>

#include <torch/torch.h>

namespace ocm::trainer {

Adam::Adam(NamedTensors parameters, const PhaseConfig& phase)
    : parameters_(std::move(parameters)),
      beta1_(phase.beta1),
      beta2_(phase.beta2),
      weight_decay_(phase.weight_decay),
      decoupled_(phase.optimizer == "adamw") {
  for (const auto& p : parameters_.tensors) {
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
  }
}

// Note [foreach updates]
// The optimizer, the EMA, the gradient norm and clipping update every parameter tensor with
// LibTorch's _foreach_ operations: on CUDA one multi-tensor kernel covers a whole list, where a
// loop would launch several kernels per tensor (about 2,400 launches per step for the CIFAR-10
// network's Adam alone), and the host's launch time, not the GPU, would set the step time. The
// arithmetic is the same as the per-tensor formulas in the comments; on the CPU the operations
// loop over the tensors.
void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  constexpr double kEps = 1e-8;
  ++steps_;
  const double bias_correction1 = 1 - std::pow(beta1_, static_cast<double>(steps_));
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(beta2_, static_cast<double>(steps_)));
  std::vector<torch::Tensor> params, gradients, exp_avg, exp_avg_sq;
  for (size_t i = 0; i < parameters_.tensors.size(); ++i) {
    const torch::Tensor& p = parameters_.tensors[i];
    if (!p.grad().defined())
      continue;
    params.push_back(p.detach());
    gradients.push_back(p.grad());
    exp_avg.push_back(exp_avg_[i]);
    exp_avg_sq.push_back(exp_avg_sq_[i]);
  }
  if (params.empty())
    return;
  if (weight_decay_ != 0) {
    if (decoupled_)
      at::_foreach_mul_(params, 1 - lr * weight_decay_);  // p *= 1 - lr * wd
    else
      gradients = at::_foreach_add(gradients, params, weight_decay_);  // g += wd * p
  }
  // m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
  at::_foreach_mul_(exp_avg, beta1_);
  at::_foreach_add_(exp_avg, gradients, 1 - beta1_);
  at::_foreach_mul_(exp_avg_sq, beta2_);
  at::_foreach_addcmul_(exp_avg_sq, gradients, gradients, 1 - beta2_);
  // p -= lr / bias_correction1 * m / (sqrt(v) / sqrt(bias_correction2) + eps)
  std::vector<torch::Tensor> denominator = at::_foreach_sqrt(exp_avg_sq);
  at::_foreach_div_(denominator, bias_correction2_sqrt);
  at::_foreach_add_(denominator, kEps);
  at::_foreach_addcdiv_(params, exp_avg, denominator, -lr / bias_correction1);
}

namespace {

const std::string kExpAvg = std::string(checkpoints::prefix::kOptimizer) + "/exp_avg";
const std::string kExpAvgSq = std::string(checkpoints::prefix::kOptimizer) + "/exp_avg_sq";
const std::string kSteps = std::string(checkpoints::prefix::kOptimizer) + "/steps";

}  // namespace

void Adam::save(TensorMap& out) const {
  checkpoints::save_tensors(kExpAvg, {parameters_.names, exp_avg_}, out);
  checkpoints::save_tensors(kExpAvgSq, {parameters_.names, exp_avg_sq_}, out);
  checkpoints::write_counter(out, kSteps, steps_);
}

bool Adam::stored_in(const TensorMap& in) {
  return in.count(kSteps) != 0;
}

void Adam::load(const TensorMap& in, const std::string& where) {
  checkpoints::load_tensors(kExpAvg, in, {parameters_.names, exp_avg_}, where);
  checkpoints::load_tensors(kExpAvgSq, in, {parameters_.names, exp_avg_sq_}, where);
  steps_ = checkpoints::find_tensor(in, kSteps, {1}, where).item<int64_t>();
}

double learning_rate(const PhaseConfig& phase, int64_t step) {
  if (step < phase.warmup)
    return phase.lr * static_cast<double>(step + 1) / static_cast<double>(phase.warmup);
  return phase.lr;
}

namespace {

// The .grad tensors that exist, for the _foreach_ operations.
std::vector<torch::Tensor> defined_gradients(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> gradients;
  for (const auto& p : parameters) {
    if (p.grad().defined())
      gradients.push_back(p.grad());
  }
  return gradients;
}

}  // namespace

torch::Tensor gradient_norm_squared(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> gradients = defined_gradients(parameters);
  if (gradients.empty())
    return torch::zeros({}, torch::kFloat64);
  // Each tensor's norm in its own precision, their squares summed in float64.
  return torch::stack(at::_foreach_norm(gradients)).to(torch::kFloat64).square().sum();
}

void scale_gradients(const std::vector<torch::Tensor>& parameters, double factor) {
  torch::NoGradGuard no_grad;
  at::_foreach_mul_(defined_gradients(parameters), factor);
}

Ema::Ema(const NamedTensors& parameters, double decay) : names_(parameters.names), decay_(decay) {
  for (const auto& p : parameters.tensors)
    shadow_.push_back(p.detach().clone());
}

void Ema::update(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  // shadow += (1 - decay) (p - shadow)
  std::vector<torch::Tensor> detached;
  for (const auto& p : parameters)
    detached.push_back(p.detach());
  at::_foreach_add_(shadow_, at::_foreach_sub(detached, shadow_), 1 - decay_);
}

void Ema::save(const std::string& prefix, TensorMap& out) const {
  checkpoints::save_tensors(prefix, {names_, shadow_}, out);
}

void Ema::load(const std::string& prefix, const TensorMap& in, const std::string& where) {
  checkpoints::load_tensors(prefix, in, {names_, shadow_}, where);
}

}  // namespace ocm::trainer
