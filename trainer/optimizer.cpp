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
    exp_avg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    exp_avg_sq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
  }
}

void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  constexpr double kEps = 1e-8;
  ++steps_;
  const double bias_correction1 = 1 - std::pow(beta1_, static_cast<double>(steps_));
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(beta2_, static_cast<double>(steps_)));
  for (size_t i = 0; i < parameters_.tensors.size(); ++i) {
    torch::Tensor& p = parameters_.tensors[i];
    torch::Tensor gradient = p.grad();
    if (!gradient.defined())
      continue;
    if (weight_decay_ != 0) {
      if (decoupled_)
        p.mul_(1 - lr * weight_decay_);
      else
        gradient = gradient.add(p, weight_decay_);
    }
    exp_avg_[i].mul_(beta1_).add_(gradient, 1 - beta1_);
    exp_avg_sq_[i].mul_(beta2_).addcmul_(gradient, gradient, 1 - beta2_);
    const torch::Tensor denominator = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(kEps);
    p.addcdiv_(exp_avg_[i], denominator, -lr / bias_correction1);
  }
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

double gradient_norm(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  if (parameters.empty())
    return 0;
  torch::Tensor sum = torch::zeros({}, parameters.front().options().dtype(torch::kFloat64));
  for (const auto& p : parameters) {
    if (p.grad().defined())
      sum += p.grad().to(torch::kFloat64).square().sum();
  }
  return std::sqrt(sum.item<double>());  // one host synchronisation
}

void scale_gradients(const std::vector<torch::Tensor>& parameters, double factor) {
  torch::NoGradGuard no_grad;
  for (const auto& p : parameters) {
    if (p.grad().defined())
      p.grad().mul_(factor);
  }
}

Ema::Ema(const NamedTensors& parameters, double decay) : names_(parameters.names), decay_(decay) {
  for (const auto& p : parameters.tensors)
    shadow_.push_back(p.detach().clone());
}

void Ema::update(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < shadow_.size(); ++i)
    shadow_[i].lerp_(parameters[i], 1 - decay_);
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
