// Internal to diffusion/: the building blocks the networks share.
#pragma once

#include <cstdint>
#include <numeric>

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

namespace ocm::diffusion::layers {

// 32 groups as in the published networks, fewer when the channel count is not a multiple of 32
// (tiny test networks).
inline torch::nn::GroupNorm group_norm(int64_t channels, double eps) {
  return torch::nn::GroupNorm(
      torch::nn::GroupNormOptions(std::gcd<int64_t>(32, channels), channels).eps(eps));
}

// GroupNorm computed in at least float32: the improved-DDPM networks normalise half-precision
// activations in float32 and cast back. Float64 stays float64.
torch::Tensor group_norm_fp32(const torch::nn::GroupNorm& norm, const torch::Tensor& x);

inline torch::nn::Conv2d conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                                int64_t padding = 0) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

inline torch::nn::Conv2d conv3x3(int64_t in, int64_t out) {
  return conv2d(in, out, 3, 1, 1);
}

void zero_init(torch::nn::Module& module);

// x upsampled 2x by repeating each pixel (nearest neighbour), as both UNet families do.
torch::Tensor upsample_nearest(const torch::Tensor& x);

}  // namespace ocm::diffusion::layers
