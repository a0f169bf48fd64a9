#include "trainer/optimizer.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::trainer {

NamedTensors named_parameters(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_parameters()) {
    out.names.push_back(item.key());
    out.tensors.push_back(item.value());
  }
  return out;
}

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

void Adam::save(std::map<std::string, torch::Tensor>& out) const {
  for (size_t i = 0; i < parameters_.names.size(); ++i) {
    out["optimizer/exp_avg/" + parameters_.names[i]] = exp_avg_[i];
    out["optimizer/exp_avg_sq/" + parameters_.names[i]] = exp_avg_sq_[i];
  }
  out["optimizer/steps"] = torch::tensor({steps_}, torch::kInt64);
}

namespace {

const torch::Tensor& find_tensor(const std::map<std::string, torch::Tensor>& in,
                                 const std::string& name, at::IntArrayRef shape,
                                 const std::string& where) {
  const auto it = in.find(name);
  if (it == in.end())
    throw UserError(where, "has no tensor `" + name + "`", "a checkpoint of this model");
  if (it->second.sizes() != shape) {
    throw UserError(where + ":" + name, "has shape " + c10::str(it->second.sizes()),
                    c10::str(shape) + ", the shape this config's model has",
                    "The checkpoint belongs to a different model configuration.");
  }
  return it->second;
}

}  // namespace

void Adam::load(const std::map<std::string, torch::Tensor>& in, const std::string& where) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.names.size(); ++i) {
    const std::string& name = parameters_.names[i];
    exp_avg_[i].copy_(find_tensor(in, "optimizer/exp_avg/" + name, exp_avg_[i].sizes(), where));
    exp_avg_sq_[i].copy_(
        find_tensor(in, "optimizer/exp_avg_sq/" + name, exp_avg_sq_[i].sizes(), where));
  }
  steps_ = find_tensor(in, "optimizer/steps", {1}, where).item<int64_t>();
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

void Ema::save(const std::string& prefix, std::map<std::string, torch::Tensor>& out) const {
  for (size_t i = 0; i < names_.size(); ++i)
    out[prefix + "/" + names_[i]] = shadow_[i];
}

void Ema::load(const std::string& prefix, const std::map<std::string, torch::Tensor>& in,
               const std::string& where) {
  load_tensors(prefix, in, {names_, shadow_}, where);
}

void load_tensors(const std::string& prefix, const std::map<std::string, torch::Tensor>& in,
                  const NamedTensors& parameters, const std::string& where) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters.names.size(); ++i) {
    const torch::Tensor& p = parameters.tensors[i];
    p.detach().copy_(find_tensor(in, prefix + "/" + parameters.names[i], p.sizes(), where));
  }
}

void save_tensors(const std::string& prefix, const NamedTensors& parameters,
                  std::map<std::string, torch::Tensor>& out) {
  for (size_t i = 0; i < parameters.names.size(); ++i)
    out[prefix + "/" + parameters.names[i]] = parameters.tensors[i].detach();
}

}  // namespace ocm::trainer
