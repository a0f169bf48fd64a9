// The trainer's Adam/AdamW and EMA (Note [foreach updates]) against LibTorch's own optimizers
// and the EMA's closed form.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/config.h"
#include "trainer/optimizer.h"

namespace ocm::trainer {
namespace {

std::vector<torch::Tensor> random_parameters() {
  torch::manual_seed(1);
  return {torch::randn({4, 3, 3, 3}), torch::randn({7}), torch::randn({5, 2})};
}

void set_random_gradients(const std::vector<torch::Tensor>& parameters, int step) {
  torch::manual_seed(100 + step);
  for (const auto& p : parameters)
    p.mutable_grad() = torch::randn_like(p);
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

PhaseConfig phase(const std::string& optimizer, double weight_decay) {
  PhaseConfig config{};
  config.optimizer = optimizer;
  config.lr = 1e-2;
  config.beta1 = 0.9;
  config.beta2 = 0.99;
  config.weight_decay = weight_decay;
  return config;
}

void expect_matches_libtorch(const std::string& kind, double weight_decay) {
  std::vector<torch::Tensor> ours = random_parameters();
  std::vector<torch::Tensor> theirs;
  for (const auto& p : ours) {
    p.set_requires_grad(true);
    theirs.push_back(p.detach().clone().set_requires_grad(true));
  }
  Adam adam({{"a", "b", "c"}, ours}, phase(kind, weight_decay));
  std::unique_ptr<torch::optim::Optimizer> reference;
  if (kind == "adamw") {
    reference = std::make_unique<torch::optim::AdamW>(
        theirs, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.99}).weight_decay(weight_decay));
  } else {
    reference = std::make_unique<torch::optim::Adam>(
        theirs, torch::optim::AdamOptions(1e-2).betas({0.9, 0.99}).weight_decay(weight_decay));
  }
  for (int step = 0; step < 5; ++step) {
    set_random_gradients(ours, step);
    set_random_gradients(theirs, step);
    adam.step(1e-2);
    reference->step();
  }
  // The same formulas; only the order of floating-point operations may differ.
  EXPECT_LT(max_difference(ours, theirs), 1e-6) << kind;
  // The control: five steps moved the parameters far beyond that.
  EXPECT_GT(max_difference(ours, random_parameters()), 1e-2);
}

TEST(Optimizer, AdamMatchesLibTorchsAdam) {
  expect_matches_libtorch("adam", 0);
  expect_matches_libtorch("adam", 0.1);
}

TEST(Optimizer, AdamWMatchesLibTorchsAdamW) {
  expect_matches_libtorch("adamw", 0.1);
}

TEST(Optimizer, EmaFollowsItsRecurrence) {
  std::vector<torch::Tensor> parameters = random_parameters();
  Ema ema({{"a", "b", "c"}, parameters}, 0.75);
  std::vector<torch::Tensor> expected;
  for (const auto& p : parameters)
    expected.push_back(p.clone());
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < parameters.size(); ++i) {
      parameters[i].add_(1.0 + step);
      expected[i] = 0.75 * expected[i] + 0.25 * parameters[i];
    }
    ema.update(parameters);
  }
  EXPECT_LT(max_difference(ema.tensors(), expected), 1e-6);
}

TEST(Optimizer, GradientNormAndClippingCoverEveryGradient) {
  std::vector<torch::Tensor> parameters = random_parameters();
  set_random_gradients(parameters, 0);
  double squares = 0;
  for (const auto& p : parameters)
    squares += p.grad().to(torch::kFloat64).square().sum().item<double>();
  EXPECT_NEAR(gradient_norm_squared(parameters).item<double>(), squares, 1e-5 * squares);
  scale_gradients(parameters, 0.5);
  EXPECT_NEAR(gradient_norm_squared(parameters).item<double>(), 0.25 * squares, 1e-5 * squares);
}

}  // namespace
}  // namespace ocm::trainer
