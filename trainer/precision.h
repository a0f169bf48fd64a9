// Training precision and memory layout: bf16 autocast on CUDA, channels-last weights.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "common/config.h"
#include "common/error.h"

namespace ocm::trainer {

// Note [bf16 autocast]
// With dist.precision bf16 (what auto means on CUDA) each training forward pass runs under CUDA
// autocast: convolutions and matrix products in bf16, norms, softmax and reductions in fp32, by
// LibTorch's own op lists. Backward runs outside the region, as autocast expects. Weights,
// gradients, the all-reduce, Adam and the EMA stay fp32, so a checkpoint does not depend on the
// precision and a run may resume with the other one. bf16 has fp32's exponent range, so there is
// no loss scaling. Training on the CPU stays fp32.
inline bool uses_bf16(const Config& config, const torch::Device& device) {
  if (config.dist.precision == "bf16" && !device.is_cuda()) {
    throw UserError("dist.precision", "is bf16, but training runs on " + device.str(),
                    "fp32 or auto on the CPU", "bf16 autocast is for CUDA devices.");
  }
  return device.is_cuda() && config.dist.precision != "fp32";
}

// CUDA autocast to bf16 while it lives, when `enabled`.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool enabled) : enabled_(enabled) {
    if (!enabled_)
      return;
    set_enabled(true);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!enabled_)
      return;
    if (at::autocast::decrement_nesting() == 0)
      at::autocast::clear_cache();
    set_enabled(false);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  static void set_enabled(bool enabled) {
    // LibTorch 2.4 made autocast's calls take the device type and deprecated the CUDA-only ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(enabled);
#endif
  }

  bool enabled_;
};

// Note [channels-last]
// dist.channels_last stores every 4-D weight NHWC, and each batch too; convolutions then keep
// their activations NHWC, the layout cuDNN's bf16 kernels run in without transposes. Gradients,
// Adam's moments and the EMA follow the weights' layout; checkpoints hold the logical (NCHW)
// order, so a run may resume with either layout.
inline void use_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4)
      p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

}  // namespace ocm::trainer
