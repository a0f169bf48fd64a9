#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "common/config.h"
#include "diffusion/model.h"

namespace ocm::diffusion {

// The DDPM / improved-DDPM UNet: per level `num_res_blocks` residual blocks (GroupNorm, SiLU,
// time embedding added after the first conv, dropout before the second), self-attention at the
// listed resolutions, a stride-2 conv between levels, nearest upsampling with a conv on the way
// back, and a zero-initialised GroupNorm-SiLU-conv output block whose input is the features the
// OCM head reads.
struct UNetOptions {
  int64_t in_channels = 3;
  int64_t resolution = 32;
  int64_t ch = 128;
  std::vector<int64_t> ch_mult = {1, 2, 2, 2};
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attn_resolutions = {16};
  double dropout = 0.1;
};

// An MLP for vector (toy or latent) data: an input layer, `depth` time-conditioned residual
// blocks of `width` units, a zero-initialised output layer whose input is the head's features.
struct MlpOptions {
  int64_t dim = 2;
  int64_t width = 256;
  int64_t depth = 3;
};

// Throws UserError for shapes the network cannot take (names the option and what fits).
std::shared_ptr<torch::nn::Module> make_unet(const UNetOptions& options);
std::shared_ptr<torch::nn::Module> make_mlp(const MlpOptions& options);

// The trunk interface of a module made above.
std::shared_ptr<Trunk> as_trunk(const std::shared_ptr<torch::nn::Module>& network);

// OCM heads (docs/maths.md section 4), zero-initialised so that h = 0 at the start:
// simple: GroupNorm-SiLU-3x3 conv on the UNet's last feature map; complex: a time-conditioned
// residual block first; mlp: a small MLP on the MLP's last hidden layer (or any [B, F] features).
struct HeadOptions {
  std::string kind = "simple";  // simple, complex or mlp
  int64_t feature_channels = 128;
  int64_t time_embedding_dim = 512;
  int64_t out_channels = 3;
  int64_t width = 256;   // mlp only
  double dropout = 0.0;  // complex only
};
std::shared_ptr<Head> make_head(const HeadOptions& options);

// The trunk network and the OCM head that `model` describes, for samples of shape [C, H, W]
// (unet) or [D] (mlp). Throws UserError when the config and the data do not fit together.
std::shared_ptr<torch::nn::Module> make_network(const ModelConfig& model,
                                                at::IntArrayRef sample_shape);
std::shared_ptr<Head> make_head(const ModelConfig& model, at::IntArrayRef sample_shape);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace ocm::diffusion
