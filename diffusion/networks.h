#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "common/config.h"
#include "diffusion/model.h"

namespace ocm::diffusion {

// Note [published networks]
// The two UNet families are laid out parameter for parameter as the code their published
// checkpoints were trained with, so that a checkpoint's keys are our parameter names and its
// outputs are reproduced (tests/reference/ holds an independent PyTorch version of both):
// - unet: the DDPM network of Ho et al. (2020) as its widely used PyTorch port has it (temb.dense,
//   down.L.block.I, mid.attn_1, up.L.upsample, ...): GroupNorm eps 1e-6, [sin, cos] timestep
//   embedding, a stride-2 downsampling conv after padding bottom and right only.
// - iddpm: the improved-DDPM / guided-diffusion network (time_embed, input_blocks.N.M,
//   middle_block, output_blocks, out): GroupNorm eps 1e-5 computed in at least float32,
//   [cos, sin] embedding, multi-head attention, optional scale-shift norm, resampling inside
//   residual blocks and learned sigma (2C output channels: eps, then the variance interpolation
//   v in [-1, 1]).
// Their OCM heads copy each family's output layers and carry the names the OCM code uses
// (docs/maths.md section 4).

// Note [time input]
// Published networks differ in the number they are fed for the discrete step t in 1..N: the
// DDPM port and improved DDPM index steps from 0 (t - 1), improved DDPM rescales that to
// [0, 1000) when N differs from 1000. A network computes its input as (t - shift) * scale.
struct TimeInput {
  double shift = 0;
  double scale = 1;
  torch::Tensor network_time(const torch::Tensor& t) const;  // float32
};
// convention: t, t-1, t*1000/N, (t-1)*1000/N, or auto (the family's published one).
TimeInput time_input_of(const std::string& convention, const std::string& kind,
                        int64_t num_timesteps);

struct UNetOptions {
  int64_t in_channels = 3;
  int64_t resolution = 32;
  int64_t ch = 128;
  std::vector<int64_t> ch_mult = {1, 2, 2, 2};
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attn_resolutions = {16};  // feature-map sizes
  double dropout = 0.1;
  TimeInput time_input = {1, 1};
};

struct IddpmOptions : UNetOptions {
  int64_t num_heads = 1;
  int64_t num_head_channels = 0;  // > 0: heads = channels / this, overriding num_heads
  bool use_scale_shift_norm = false;
  bool resblock_updown = false;
  bool learn_sigma = false;
};

// An MLP for vector (toy or latent) data: an input layer, `depth` time-conditioned residual
// blocks of `width` units, a zero-initialised output layer whose input is the head's features.
struct MlpOptions {
  int64_t dim = 2;
  int64_t width = 256;
  int64_t depth = 3;
  TimeInput time_input = {};
};

// Throw UserError for shapes the network cannot take (naming the option and what fits).
std::shared_ptr<torch::nn::Module> make_unet(const UNetOptions& options);
std::shared_ptr<torch::nn::Module> make_iddpm(const IddpmOptions& options);
std::shared_ptr<torch::nn::Module> make_mlp(const MlpOptions& options);

// The trunk interface of a module made above.
std::shared_ptr<Trunk> as_trunk(const std::shared_ptr<torch::nn::Module>& network);

// OCM heads (docs/maths.md section 4), zero-initialised so that h = 0 at the start:
// simple: the family's GroupNorm-SiLU-3x3 conv on the UNet's last feature map; complex: a
// time-conditioned residual block of the family first; mlp: a small MLP on the MLP's last hidden
// layer (or any [B, F] features).
struct HeadOptions {
  std::string kind = "simple";  // simple, complex or mlp
  int64_t feature_channels = 128;
  int64_t time_embedding_dim = 512;
  int64_t out_channels = 3;
  int64_t width = 256;            // mlp only
  double dropout = 0.0;           // complex only
  std::string family = "unet";    // unet or iddpm: whose layers the head copies
  bool scale_shift_norm = false;  // iddpm complex only
};
std::shared_ptr<Head> make_head(const HeadOptions& options);

// The trunk network and the OCM head that the config's model section describes, for samples of
// shape [C, H, W] (unet, iddpm) or [D] (mlp). Throws UserError when the config and the data do
// not fit together.
std::shared_ptr<torch::nn::Module> make_network(const Config& config, at::IntArrayRef sample_shape);
std::shared_ptr<Head> make_head(const ModelConfig& model, at::IntArrayRef sample_shape);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace ocm::diffusion
