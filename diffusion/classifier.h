#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace ocm::diffusion {

// A small CNN image classifier, the feature network of FD where Inception does not suit: three
// 3x3 conv stages (32, 64, 128 channels, the last two with stride 2), GroupNorm and SiLU, global
// average pooling to 128 features, a linear layer to the classes. Trained by
// `ocm classifier train` (trainer/classifier_training.h); eval uses its pooled features.
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

}  // namespace ocm::diffusion
