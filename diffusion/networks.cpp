#include "diffusion/networks.h"

#include <torch/torch.h>

#include "common/error.h"
#include "diffusion/families.h"

namespace ocm::diffusion {

torch::Tensor TimeInput::network_time(const torch::Tensor& t) const {
  torch::Tensor time = t.to(torch::kFloat32);
  if (shift != 0)
    time = time - shift;
  return scale == 1 ? time : time * scale;
}

TimeInput time_input_of(const std::string& convention, const std::string& kind,
                        int64_t num_timesteps) {
  const double rescale = 1000.0 / static_cast<double>(num_timesteps);
  if (convention == "auto") {
    if (kind == "unet")
      return {1, 1};
    return kind == "iddpm" ? TimeInput{1, rescale} : TimeInput{0, 1};
  }
  if (convention == "t")
    return {0, 1};
  if (convention == "t-1")
    return {1, 1};
  if (convention == "t*1000/N")
    return {0, rescale};
  if (convention == "(t-1)*1000/N")
    return {1, rescale};
  throw UserError("model.time_input", "is `" + convention + "`",
                  "auto, t, t-1, t*1000/N or (t-1)*1000/N");
}

namespace {

void check_positive(int64_t value, const std::string& key) {
  if (value < 1)
    throw UserError(key, "is " + std::to_string(value), "a positive integer");
}

// The sinusoidal time embedding has this many features: half sines, half cosines.
void check_even_embedding(int64_t value, const std::string& key) {
  if (value < 4 || value % 2 != 0) {
    throw UserError(key, "is " + std::to_string(value),
                    "an even number of at least 4 (it sizes the time embedding)");
  }
}

void check_unet(const UNetOptions& options) {
  check_positive(options.in_channels, "model input channels");
  check_even_embedding(options.ch, "model.ch");
  check_positive(options.num_res_blocks, "model.num_res_blocks");
  if (options.ch_mult.empty())
    throw UserError("model.ch_mult", "is empty", "one multiplier per level");
  for (const int64_t m : options.ch_mult)
    check_positive(m, "model.ch_mult");
  const int64_t factor = int64_t{1} << (options.ch_mult.size() - 1);
  if (options.resolution < factor || options.resolution % factor != 0) {
    throw UserError("model.ch_mult",
                    std::to_string(options.ch_mult.size()) + " levels halve " +
                        std::to_string(options.resolution) + "x" +
                        std::to_string(options.resolution) + " images " +
                        std::to_string(options.ch_mult.size() - 1) + " times",
                    "an image size divisible by " + std::to_string(factor),
                    "Use fewer levels (28x28 takes three, e.g. [1, 2, 2]).");
  }
  if (!(options.dropout >= 0 && options.dropout < 1)) {
    throw UserError("model.dropout", "is " + std::to_string(options.dropout), "a number in [0, 1)");
  }
}

}  // namespace

std::shared_ptr<torch::nn::Module> make_unet(const UNetOptions& options) {
  check_unet(options);
  return ddpm::make_unet(options);
}

std::shared_ptr<torch::nn::Module> make_iddpm(const IddpmOptions& options) {
  check_unet(options);
  check_positive(options.num_heads, "model.num_heads");
  return iddpm::make_unet(options);
}

std::shared_ptr<torch::nn::Module> make_mlp(const MlpOptions& options) {
  check_positive(options.dim, "data dimension");
  check_even_embedding(options.width, "model.width");
  if (options.depth < 0)
    throw UserError("model.depth", "is negative", "0 or more blocks");
  return mlp::make_network(options);
}

std::shared_ptr<Trunk> as_trunk(const std::shared_ptr<torch::nn::Module>& network) {
  auto trunk = std::dynamic_pointer_cast<Trunk>(network);
  if (!trunk)
    throw std::logic_error("as_trunk: the module is not a trunk network");
  return trunk;
}

std::shared_ptr<Head> make_head(const HeadOptions& options) {
  if (options.kind == "mlp")
    return mlp::make_head(options);
  if (options.kind != "simple" && options.kind != "complex") {
    throw UserError("model.head", "is `" + options.kind + "`",
                    "simple, complex (UNet) or mlp (MLP)");
  }
  return options.family == "iddpm" ? iddpm::make_head(options) : ddpm::make_head(options);
}

namespace {

void check_sample_rank(const ModelConfig& model, at::IntArrayRef sample_shape) {
  const size_t rank = model.kind == "mlp" ? 1 : 3;
  if (sample_shape.size() != rank || (rank == 3 && sample_shape[1] != sample_shape[2])) {
    std::string shape;
    for (const int64_t d : sample_shape)
      shape += (shape.empty() ? "" : "x") + std::to_string(d);
    throw UserError("model.kind", "`" + model.kind + "` cannot take samples of shape " + shape,
                    rank == 3 ? "square images [C, H, W]" : "vectors [D]",
                    "Use model.kind: unet or iddpm for images and mlp for vector data.");
  }
}

IddpmOptions unet_options(const ModelConfig& model, int64_t num_timesteps,
                          at::IntArrayRef sample_shape) {
  IddpmOptions o;
  o.in_channels = sample_shape[0];
  o.resolution = sample_shape[1];
  o.ch = model.ch;
  o.ch_mult = model.ch_mult;
  o.num_res_blocks = model.num_res_blocks;
  o.attn_resolutions = model.attn_resolutions;
  o.dropout = model.dropout;
  o.time_input = time_input_of(model.time_input, model.kind, num_timesteps);
  o.num_heads = model.num_heads;
  o.num_head_channels = model.num_head_channels;
  o.use_scale_shift_norm = model.use_scale_shift_norm;
  o.resblock_updown = model.resblock_updown;
  o.learn_sigma = model.learn_sigma;
  return o;
}

}  // namespace

std::shared_ptr<torch::nn::Module> make_network(const Config& config,
                                                at::IntArrayRef sample_shape) {
  const ModelConfig& model = config.model;
  const int64_t num_timesteps = config.diffusion.num_timesteps;
  check_sample_rank(model, sample_shape);
  if (model.kind == "mlp") {
    return make_mlp({sample_shape[0], model.width, model.depth,
                     time_input_of(model.time_input, model.kind, num_timesteps)});
  }
  const IddpmOptions options = unet_options(model, num_timesteps, sample_shape);
  return model.kind == "iddpm" ? make_iddpm(options) : make_unet(options);
}

std::shared_ptr<Head> make_head(const ModelConfig& model, at::IntArrayRef sample_shape) {
  check_sample_rank(model, sample_shape);
  const bool fits = model.kind == "mlp" ? model.head == "mlp" : model.head != "mlp";
  if (!fits) {
    throw UserError("model.head", "`" + model.head + "` does not fit a " + model.kind + " network",
                    model.kind == "mlp" ? "mlp" : "simple or complex");
  }
  HeadOptions options;
  options.kind = model.head;
  options.out_channels = sample_shape[0];
  options.family = model.kind;
  if (model.kind == "mlp") {
    options.feature_channels = model.width;
    options.time_embedding_dim = model.width;
    options.width = model.width;
  } else {
    options.feature_channels = model.ch * model.ch_mult.front();
    options.time_embedding_dim = 4 * model.ch;
    options.dropout = model.dropout;
    options.scale_shift_norm = model.use_scale_shift_norm;
  }
  return make_head(options);
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters())
    total += p.numel();
  return total;
}

}  // namespace ocm::diffusion
