#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace ocm::eval {

// A small CNN classifier: three 3x3 conv stages (32, 64, 128 channels, the last two with
// stride 2), GroupNorm and SiLU, global average pooling to 128 features, a linear layer to the
// classes. The pooled features are what FD uses.
class ClassifierImpl : public torch::nn::Module {
 public:
  ClassifierImpl(int64_t in_channels, int64_t classes);
  torch::Tensor features(const torch::Tensor& x);  // float [N, C, H, W] in [-1, 1] -> [N, 128]
  torch::Tensor forward(const torch::Tensor& x);   // logits [N, classes]

 private:
  torch::nn::Sequential body_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Classifier);

struct ClassifierTraining {
  std::string data;  // labelled dataset of `ocm data prepare`
  std::string out;   // directory: checkpoints of the classifier
  int64_t steps = 3000;
  int64_t batch = 128;
  double lr = 1e-3;
  uint64_t seed = 0;
};

// Trains (or resumes, from `out`) and reports test accuracy. Returns the accuracy.
double train_classifier(const ClassifierTraining& options);

// Loads a classifier from its directory or checkpoint file.
Classifier load_classifier(const std::string& path, const torch::Device& device);

}  // namespace ocm::eval
