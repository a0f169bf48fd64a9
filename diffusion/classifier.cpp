#include "diffusion/classifier.h"

#include <torch/torch.h>

namespace ocm::diffusion {

namespace nn = torch::nn;

ClassifierImpl::ClassifierImpl(int64_t in_channels, int64_t classes) {
  body_ = register_module("body", nn::Sequential());
  int64_t in = in_channels;
  for (const auto& [out, stride] : {std::pair<int64_t, int64_t>{32, 1}, {64, 2}, {128, 2}}) {
    body_->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1)));
    body_->push_back(nn::GroupNorm(8, out));
    body_->push_back(nn::SiLU());
    in = out;
  }
  out_ = register_module("out", nn::Linear(128, classes));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  return body_->forward(x).mean({2, 3});
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  return out_(features(x));
}

}  // namespace ocm::diffusion
