#include "diffusion/networks.h"

#include <algorithm>
#include <numeric>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::diffusion {
namespace {

namespace nn = torch::nn;

// 32 groups as in DDPM, fewer when the channel count is not a multiple of 32 (tiny test nets).
nn::GroupNorm group_norm(int64_t channels) {
  return nn::GroupNorm(nn::GroupNormOptions(std::gcd<int64_t>(32, channels), channels));
}

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

void zero_init(nn::Conv2d& conv) {
  torch::NoGradGuard no_grad;
  conv->weight.zero_();
  conv->bias.zero_();
}

void zero_init(nn::Linear& linear) {
  torch::NoGradGuard no_grad;
  linear->weight.zero_();
  linear->bias.zero_();
}

class ResBlockImpl : public nn::Module {
 public:
  ResBlockImpl(int64_t in, int64_t out, int64_t time_dim, double dropout)
      : norm1_(register_module("norm1", group_norm(in))),
        conv1_(register_module("conv1", conv3x3(in, out))),
        time_proj_(register_module("time_proj", nn::Linear(time_dim, out))),
        norm2_(register_module("norm2", group_norm(out))),
        dropout_(register_module("dropout", nn::Dropout(dropout))),
        conv2_(register_module("conv2", conv3x3(out, out))) {
    if (in != out)
      skip_ = register_module("skip", nn::Conv2d(nn::Conv2dOptions(in, out, 1)));
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time_embedding) {
    torch::Tensor h = conv1_(torch::silu(norm1_(x)));
    h = h + time_proj_(torch::silu(time_embedding)).unsqueeze(-1).unsqueeze(-1);
    h = conv2_(dropout_(torch::silu(norm2_(h))));
    return (skip_ ? skip_(x) : x) + h;
  }

 private:
  nn::GroupNorm norm1_;
  nn::Conv2d conv1_;
  nn::Linear time_proj_;
  nn::GroupNorm norm2_;
  nn::Dropout dropout_;
  nn::Conv2d conv2_;
  nn::Conv2d skip_{nullptr};
};
TORCH_MODULE(ResBlock);

class AttentionImpl : public nn::Module {
 public:
  explicit AttentionImpl(int64_t channels)
      : norm_(register_module("norm", group_norm(channels))),
        q_(register_module("q", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)))),
        k_(register_module("k", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)))),
        v_(register_module("v", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)))),
        out_(register_module("out", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    const torch::Tensor h = norm_(x);
    const torch::Tensor q = q_(h).reshape({b, c, hw}).transpose(1, 2);  // [B, HW, C]
    const torch::Tensor k = k_(h).reshape({b, c, hw});                  // [B, C, HW]
    const torch::Tensor v = v_(h).reshape({b, c, hw}).transpose(1, 2);  // [B, HW, C]
    const torch::Tensor weights =
        torch::softmax(torch::bmm(q, k) / std::sqrt(static_cast<double>(c)), -1);
    const torch::Tensor attended = torch::bmm(weights, v).transpose(1, 2).reshape(x.sizes());
    return x + out_(attended);
  }

 private:
  nn::GroupNorm norm_;
  nn::Conv2d q_, k_, v_, out_;
};
TORCH_MODULE(Attention);

// One residual block, optionally followed by attention.
struct Stage {
  ResBlock block{nullptr};
  Attention attention{nullptr};
};

class UNet : public nn::Module, public Trunk {
 public:
  explicit UNet(const UNetOptions& o) : ch_(o.ch) {
    const int64_t time_dim = 4 * o.ch;
    time_in_ = register_module("time_in", nn::Linear(o.ch, time_dim));
    time_out_ = register_module("time_out", nn::Linear(time_dim, time_dim));
    conv_in_ = register_module("conv_in", conv3x3(o.in_channels, o.ch));
    auto has_attention = [&](int64_t resolution) {
      return std::find(o.attn_resolutions.begin(), o.attn_resolutions.end(), resolution) !=
             o.attn_resolutions.end();
    };
    auto make_stage = [&](const std::string& name, int64_t in, int64_t out, int64_t resolution) {
      Stage stage;
      stage.block = register_module(name + "_block", ResBlock(in, out, time_dim, o.dropout));
      if (has_attention(resolution))
        stage.attention = register_module(name + "_attn", Attention(out));
      return stage;
    };

    std::vector<int64_t> skip_channels = {o.ch};
    int64_t channels = o.ch;
    int64_t resolution = o.resolution;
    const size_t levels = o.ch_mult.size();
    for (size_t level = 0; level < levels; ++level) {
      const int64_t out = o.ch * o.ch_mult[level];
      for (int64_t i = 0; i < o.num_res_blocks; ++i) {
        down_.push_back(make_stage("down" + std::to_string(level) + "_" + std::to_string(i),
                                   channels, out, resolution));
        channels = out;
        skip_channels.push_back(channels);
      }
      if (level + 1 < levels) {
        downsample_.push_back(
            register_module("downsample" + std::to_string(level), conv3x3(channels, channels, 2)));
        skip_channels.push_back(channels);
        resolution /= 2;
      }
    }
    mid_block1_ = register_module("mid_block1", ResBlock(channels, channels, time_dim, o.dropout));
    mid_attention_ = register_module("mid_attn", Attention(channels));
    mid_block2_ = register_module("mid_block2", ResBlock(channels, channels, time_dim, o.dropout));
    for (size_t level = levels; level-- > 0;) {
      const int64_t out = o.ch * o.ch_mult[level];
      for (int64_t i = 0; i <= o.num_res_blocks; ++i) {
        const int64_t skip = skip_channels.back();
        skip_channels.pop_back();
        up_.push_back(make_stage("up" + std::to_string(level) + "_" + std::to_string(i),
                                 channels + skip, out, resolution));
        channels = out;
      }
      if (level > 0) {
        upsample_.push_back(
            register_module("upsample" + std::to_string(level), conv3x3(channels, channels)));
        resolution *= 2;
      }
    }
    norm_out_ = register_module("norm_out", group_norm(channels));
    conv_out_ = register_module("conv_out", conv3x3(channels, o.in_channels));
    zero_init(conv_out_);
    blocks_per_level_ = o.num_res_blocks;
  }

  TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) override {
    const torch::Tensor time_embedding =
        time_out_(torch::silu(time_in_(timestep_embedding(t, ch_).to(x.dtype()))));
    std::vector<torch::Tensor> skips;
    torch::Tensor h = conv_in_(x);
    skips.push_back(h);
    size_t stage = 0;
    for (size_t level = 0; level <= downsample_.size(); ++level) {
      for (int64_t i = 0; i < blocks_per_level_; ++i) {
        h = apply(down_[stage++], h, time_embedding);
        skips.push_back(h);
      }
      if (level < downsample_.size()) {
        h = downsample_[level](h);
        skips.push_back(h);
      }
    }
    h = mid_block2_(mid_attention_(mid_block1_(h, time_embedding)), time_embedding);
    stage = 0;
    for (size_t level = 0; level <= upsample_.size(); ++level) {
      for (int64_t i = 0; i <= blocks_per_level_; ++i) {
        h = apply(up_[stage++], torch::cat({h, skips.back()}, 1), time_embedding);
        skips.pop_back();
      }
      if (level < upsample_.size()) {
        h = upsample_[level](
            torch::nn::functional::interpolate(h, torch::nn::functional::InterpolateFuncOptions()
                                                      .scale_factor(std::vector<double>{2.0, 2.0})
                                                      .mode(torch::kNearest)));
      }
    }
    return {conv_out_(torch::silu(norm_out_(h))), h, time_embedding};
  }

 private:
  static torch::Tensor apply(Stage& stage, const torch::Tensor& x,
                             const torch::Tensor& time_embedding) {
    torch::Tensor h = stage.block(x, time_embedding);
    return stage.attention ? stage.attention(h) : h;
  }

  int64_t ch_;
  int64_t blocks_per_level_ = 0;
  nn::Linear time_in_{nullptr}, time_out_{nullptr};
  nn::Conv2d conv_in_{nullptr};
  std::vector<Stage> down_, up_;
  std::vector<nn::Conv2d> downsample_, upsample_;
  ResBlock mid_block1_{nullptr}, mid_block2_{nullptr};
  Attention mid_attention_{nullptr};
  nn::GroupNorm norm_out_{nullptr};
  nn::Conv2d conv_out_{nullptr};
};

class Mlp : public nn::Module, public Trunk {
 public:
  explicit Mlp(const MlpOptions& o) : width_(o.width) {
    input_ = register_module("input", nn::Linear(o.dim, o.width));
    time_in_ = register_module("time_in", nn::Linear(o.width, o.width));
    time_out_ = register_module("time_out", nn::Linear(o.width, o.width));
    for (int64_t i = 0; i < o.depth; ++i) {
      const std::string name = "block" + std::to_string(i);
      first_.push_back(register_module(name + "_fc1", nn::Linear(o.width, o.width)));
      time_proj_.push_back(register_module(name + "_time", nn::Linear(o.width, o.width)));
      second_.push_back(register_module(name + "_fc2", nn::Linear(o.width, o.width)));
    }
    output_ = register_module("output", nn::Linear(o.width, o.dim));
    zero_init(output_);
  }

  TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) override {
    const torch::Tensor time_embedding =
        time_out_(torch::silu(time_in_(timestep_embedding(t, width_).to(x.dtype()))));
    torch::Tensor h = input_(x);
    for (size_t i = 0; i < first_.size(); ++i) {
      const torch::Tensor inner =
          first_[i](torch::silu(h)) + time_proj_[i](torch::silu(time_embedding));
      h = h + second_[i](torch::silu(inner));
    }
    return {output_(torch::silu(h)), h, time_embedding};
  }

 private:
  int64_t width_;
  nn::Linear input_{nullptr}, time_in_{nullptr}, time_out_{nullptr}, output_{nullptr};
  std::vector<nn::Linear> first_, time_proj_, second_;
};

class SimpleHead : public Head {
 public:
  SimpleHead(int64_t feature_channels, int64_t out_channels)
      : norm_(register_module("norm", group_norm(feature_channels))),
        conv_(register_module("conv", conv3x3(feature_channels, out_channels))) {
    zero_init(conv_);
  }
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor&) override {
    return conv_(torch::silu(norm_(features)));
  }

 private:
  nn::GroupNorm norm_;
  nn::Conv2d conv_;
};

class ComplexHead : public Head {
 public:
  explicit ComplexHead(const HeadOptions& o)
      : block_(register_module("block", ResBlock(o.feature_channels, o.feature_channels,
                                                 o.time_embedding_dim, o.dropout))),
        norm_(register_module("norm", group_norm(o.feature_channels))),
        conv_(register_module("conv", conv3x3(o.feature_channels, o.out_channels))) {
    zero_init(conv_);
  }
  torch::Tensor forward(const torch::Tensor& features,
                        const torch::Tensor& time_embedding) override {
    return conv_(torch::silu(norm_(block_(features, time_embedding))));
  }

 private:
  ResBlock block_;
  nn::GroupNorm norm_;
  nn::Conv2d conv_;
};

class MlpHead : public Head {
 public:
  explicit MlpHead(const HeadOptions& o)
      : features_(register_module("features", nn::Linear(o.feature_channels, o.width))),
        time_(register_module("time", nn::Linear(o.time_embedding_dim, o.width))),
        hidden_(register_module("hidden", nn::Linear(o.width, o.width))),
        output_(register_module("output", nn::Linear(o.width, o.out_channels))) {
    zero_init(output_);
  }
  torch::Tensor forward(const torch::Tensor& features,
                        const torch::Tensor& time_embedding) override {
    const torch::Tensor h = torch::silu(features_(features) + time_(time_embedding));
    return output_(torch::silu(hidden_(h)));
  }

 private:
  nn::Linear features_, time_, hidden_, output_;
};

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

}  // namespace

std::shared_ptr<torch::nn::Module> make_unet(const UNetOptions& options) {
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
  return std::make_shared<UNet>(options);
}

std::shared_ptr<torch::nn::Module> make_mlp(const MlpOptions& options) {
  check_positive(options.dim, "data dimension");
  check_even_embedding(options.width, "model.width");
  if (options.depth < 0)
    throw UserError("model.depth", "is negative", "0 or more blocks");
  return std::make_shared<Mlp>(options);
}

std::shared_ptr<Trunk> as_trunk(const std::shared_ptr<torch::nn::Module>& network) {
  auto trunk = std::dynamic_pointer_cast<Trunk>(network);
  if (!trunk)
    throw std::logic_error("as_trunk: the module is not a trunk network");
  return trunk;
}

std::shared_ptr<Head> make_head(const HeadOptions& options) {
  if (options.kind == "simple")
    return std::make_shared<SimpleHead>(options.feature_channels, options.out_channels);
  if (options.kind == "complex")
    return std::make_shared<ComplexHead>(options);
  if (options.kind == "mlp")
    return std::make_shared<MlpHead>(options);
  throw UserError("model.head", "is `" + options.kind + "`", "simple, complex (UNet) or mlp (MLP)");
}

namespace {

void check_sample_rank(const ModelConfig& model, at::IntArrayRef sample_shape) {
  const size_t rank = model.kind == "unet" ? 3 : 1;
  if (sample_shape.size() != rank || (rank == 3 && sample_shape[1] != sample_shape[2])) {
    std::string shape;
    for (const int64_t d : sample_shape)
      shape += (shape.empty() ? "" : "x") + std::to_string(d);
    throw UserError("model.kind", "`" + model.kind + "` cannot take samples of shape " + shape,
                    model.kind == "unet" ? "square images [C, H, W]" : "vectors [D]",
                    "Use model.kind: unet for images and mlp for vector data.");
  }
}

}  // namespace

std::shared_ptr<torch::nn::Module> make_network(const ModelConfig& model,
                                                at::IntArrayRef sample_shape) {
  check_sample_rank(model, sample_shape);
  if (model.kind == "mlp")
    return make_mlp({sample_shape[0], model.width, model.depth});
  UNetOptions options;
  options.in_channels = sample_shape[0];
  options.resolution = sample_shape[1];
  options.ch = model.ch;
  options.ch_mult = model.ch_mult;
  options.num_res_blocks = model.num_res_blocks;
  options.attn_resolutions = model.attn_resolutions;
  options.dropout = model.dropout;
  return make_unet(options);
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
  if (model.kind == "mlp") {
    options.feature_channels = model.width;
    options.time_embedding_dim = model.width;
    options.width = model.width;
  } else {
    options.feature_channels = model.ch * model.ch_mult.front();
    options.time_embedding_dim = 4 * model.ch;
    options.dropout = model.dropout;
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
