// The UNet of improved DDPM (Nichol & Dhariwal 2021) and its guided-diffusion successor, laid out
// parameter for parameter as their published code, so that their checkpoints (and the OCM
// paper's, which use it) load by name (Note [published networks] in networks.h).
#include <functional>

#include <torch/torch.h>

#include "common/error.h"
#include "diffusion/families.h"
#include "diffusion/layers.h"

namespace ocm::diffusion::iddpm {
namespace {

namespace nn = torch::nn;
using layers::conv3x3;
using layers::group_norm_fp32;

constexpr double kNormEps = 1e-5;

nn::GroupNorm normalization(int64_t channels) {
  return layers::group_norm(channels, kNormEps);
}

// Resampling inside a residual block (resblock_updown): average pooling down, nearest up.
torch::Tensor resample_without_conv(const torch::Tensor& x, int direction) {
  if (direction < 0)
    return torch::avg_pool2d(x, 2, 2);
  return direction > 0 ? layers::upsample_nearest(x) : x;
}

// in_layers = [norm, SiLU, conv], emb_layers = [SiLU, linear], out_layers = [norm, SiLU,
// dropout, conv], skip_connection when the channel count changes. With scale-shift norm the
// time embedding gives a per-channel scale and shift applied after out_layers' norm.
class ResBlockImpl : public nn::Module {
 public:
  // direction: -1 halves the feature map inside the block, +1 doubles it, 0 neither.
  ResBlockImpl(int64_t channels, int64_t out, int64_t time_dim, double dropout, bool scale_shift,
               int direction = 0)
      : scale_shift_(scale_shift), direction_(direction) {
    in_norm_ = normalization(channels);
    in_conv_ = conv3x3(channels, out);
    auto in_layers = register_module("in_layers", nn::ModuleList());
    in_layers->push_back(in_norm_);
    in_layers->push_back(nn::SiLU());
    in_layers->push_back(in_conv_);
    emb_linear_ = nn::Linear(time_dim, scale_shift ? 2 * out : out);
    auto emb_layers = register_module("emb_layers", nn::ModuleList());
    emb_layers->push_back(nn::SiLU());
    emb_layers->push_back(emb_linear_);
    out_norm_ = normalization(out);
    dropout_ = nn::Dropout(dropout);
    out_conv_ = conv3x3(out, out);
    layers::zero_init(*out_conv_);
    auto out_layers = register_module("out_layers", nn::ModuleList());
    for (const auto& module : std::vector<std::shared_ptr<nn::Module>>{
             out_norm_.ptr(), nn::SiLU().ptr(), dropout_.ptr(), out_conv_.ptr()})
      out_layers->push_back(module);
    if (out != channels)
      skip_connection_ = register_module("skip_connection", layers::conv2d(channels, out, 1));
  }

  torch::Tensor forward(torch::Tensor x, const torch::Tensor& time_embedding) {
    torch::Tensor h = torch::silu(group_norm_fp32(in_norm_, x));
    h = in_conv_(resample_without_conv(h, direction_));
    x = resample_without_conv(x, direction_);
    const torch::Tensor emb = emb_linear_(torch::silu(time_embedding)).to(h.dtype());
    const torch::Tensor emb_map = emb.unsqueeze(-1).unsqueeze(-1);
    if (scale_shift_) {
      const auto scale_shift = emb_map.chunk(2, 1);
      h = group_norm_fp32(out_norm_, h) * (1 + scale_shift[0]) + scale_shift[1];
    } else {
      h = group_norm_fp32(out_norm_, h + emb_map);
    }
    h = out_conv_(dropout_(torch::silu(h)));
    return (skip_connection_ ? skip_connection_(x) : x) + h;
  }

 private:
  bool scale_shift_;
  int direction_;
  nn::GroupNorm in_norm_{nullptr}, out_norm_{nullptr};
  nn::Conv2d in_conv_{nullptr}, out_conv_{nullptr};
  nn::Linear emb_linear_{nullptr};
  nn::Dropout dropout_{nullptr};
  nn::Conv2d skip_connection_{nullptr};
};
TORCH_MODULE(ResBlock);

// Multi-head self-attention with 1-D convolutions. Each head's q, k and v are consecutive
// channel slices of `qkv`'s output (the published "legacy" order), q and k each scaled by
// ch^(-1/4), softmax in at least float32.
class AttentionBlockImpl : public nn::Module {
 public:
  AttentionBlockImpl(int64_t channels, int64_t heads)
      : heads_(heads),
        norm_(register_module("norm", normalization(channels))),
        qkv_(register_module("qkv", nn::Conv1d(nn::Conv1dOptions(channels, 3 * channels, 1)))),
        proj_out_(
            register_module("proj_out", nn::Conv1d(nn::Conv1dOptions(channels, channels, 1)))) {
    layers::zero_init(*proj_out_);
  }

  torch::Tensor forward(const torch::Tensor& input) {
    const int64_t b = input.size(0), c = input.size(1);
    const torch::Tensor x = input.reshape({b, c, -1});
    const int64_t length = x.size(2), ch = c / heads_;
    const auto qkv =
        qkv_(group_norm_fp32(norm_, x)).reshape({b * heads_, 3 * ch, length}).split(ch, 1);
    const double scale = 1 / std::sqrt(std::sqrt(static_cast<double>(ch)));
    const torch::Tensor logits = torch::bmm((qkv[0] * scale).transpose(1, 2), qkv[1] * scale);
    const auto softmax_type =
        logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    const torch::Tensor weights = torch::softmax(logits.to(softmax_type), -1).to(logits.dtype());
    const torch::Tensor attended =
        torch::bmm(qkv[2], weights.transpose(1, 2)).reshape({b, c, length});
    return (x + proj_out_(attended)).reshape(input.sizes());
  }

 private:
  int64_t heads_;
  nn::GroupNorm norm_;
  nn::Conv1d qkv_, proj_out_;
};
TORCH_MODULE(AttentionBlock);

// A resampling layer with a conv: "op" (3x3, stride 2, padding 1) down, nearest then "conv" up.
class ResampleImpl : public nn::Module {
 public:
  ResampleImpl(int64_t channels, bool down)
      : down_(down),
        conv_(
            register_module(down ? "op" : "conv", down ? layers::conv2d(channels, channels, 3, 2, 1)
                                                       : conv3x3(channels, channels))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return conv_(down_ ? x : layers::upsample_nearest(x));
  }

 private:
  bool down_;
  nn::Conv2d conv_;
};
TORCH_MODULE(Resample);

// The published TimestepEmbedSequential: children named 0, 1, ... applied in turn, the residual
// blocks with the time embedding.
class StepsImpl : public nn::Module {
 public:
  using Apply = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

  void add(const ResBlock& block) {
    add(block.ptr(), [module = block](const torch::Tensor& x, const torch::Tensor& e) mutable {
      return module(x, e);
    });
  }
  template <class Holder>
  void add(const Holder& layer) {
    add(layer.ptr(), [module = layer](const torch::Tensor& x, const torch::Tensor&) mutable {
      return module(x);
    });
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& time_embedding) {
    for (const Apply& apply : steps_)
      x = apply(x, time_embedding);
    return x;
  }

 private:
  void add(std::shared_ptr<nn::Module> module, Apply apply) {
    register_module(std::to_string(steps_.size()), std::move(module));
    steps_.push_back(std::move(apply));
  }
  std::vector<Apply> steps_;
};
TORCH_MODULE(Steps);

int64_t heads_for(const IddpmOptions& o, int64_t channels) {
  const int64_t heads = o.num_head_channels > 0 ? channels / o.num_head_channels : o.num_heads;
  if (heads < 1 || channels % heads != 0 ||
      (o.num_head_channels > 0 && channels % o.num_head_channels != 0)) {
    throw UserError("model.num_heads / model.num_head_channels",
                    "do not divide the " + std::to_string(channels) +
                        " channels of an attention "
                        "layer",
                    "head counts (or channels per head) that divide every attended width");
  }
  return heads;
}

// The layers the blocks are made of, configured once.
struct Parts {
  const IddpmOptions& o;
  int64_t time_dim;

  ResBlock res_block(int64_t in, int64_t out, int direction = 0) const {
    return ResBlock(in, out, time_dim, o.dropout, o.use_scale_shift_norm, direction);
  }
  void add_attention(StepsImpl& steps, int64_t channels, int64_t resolution) const {
    if (std::count(o.attn_resolutions.begin(), o.attn_resolutions.end(), resolution) > 0)
      steps.add(AttentionBlock(channels, heads_for(o, channels)));
  }
  // direction -1 halves the feature map, +1 doubles it.
  void add_resample(StepsImpl& steps, int64_t channels, int direction) const {
    if (o.resblock_updown)
      steps.add(res_block(channels, channels, direction));
    else
      steps.add(Resample(channels, direction < 0));
  }
};

class IddpmUNet : public nn::Module, public Trunk {
 public:
  explicit IddpmUNet(const IddpmOptions& o)
      : ch_(o.ch),
        in_channels_(o.in_channels),
        learn_sigma_(o.learn_sigma),
        time_input_(o.time_input) {
    const int64_t time_dim = 4 * o.ch;
    time_embed_ = register_module(
        "time_embed",
        nn::Sequential(nn::Linear(o.ch, time_dim), nn::SiLU(), nn::Linear(time_dim, time_dim)));
    const int64_t channels = build_blocks(o, time_dim);
    out_norm_ = normalization(channels);
    out_conv_ = conv3x3(channels, o.learn_sigma ? 2 * o.in_channels : o.in_channels);
    layers::zero_init(*out_conv_);
    auto out = register_module("out", nn::ModuleList());
    out->push_back(out_norm_);
    out->push_back(nn::SiLU());
    out->push_back(out_conv_);
  }

  TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) override {
    const torch::Tensor time_embedding =
        time_embed_->forward(cos_sin_embedding(time_input_.network_time(t), ch_).to(x.dtype()));
    std::vector<torch::Tensor> skips;
    torch::Tensor h = x;
    for (Steps& block : input_blocks_) {
      h = block(h, time_embedding);
      skips.push_back(h);
    }
    h = middle_block_(h, time_embedding);
    for (Steps& block : output_blocks_) {
      h = block(torch::cat({h, skips.back()}, 1), time_embedding);
      skips.pop_back();
    }
    const torch::Tensor out = out_conv_(torch::silu(group_norm_fp32(out_norm_, h)));
    if (!learn_sigma_)
      return {out, h, time_embedding, {}};
    return {out.narrow(1, 0, in_channels_), h, time_embedding,
            out.narrow(1, in_channels_, in_channels_)};
  }

 private:
  // Where the encoder leaves off: its width, feature-map size and the widths of its skips.
  struct Encoded {
    int64_t channels;
    int64_t resolution;
    std::vector<int64_t> skip_channels;
  };

  // Registers input_blocks, middle_block and output_blocks; returns the last width.
  int64_t build_blocks(const IddpmOptions& o, int64_t time_dim) {
    const Parts parts{o, time_dim};
    Encoded encoded = build_input_blocks(parts);
    const int64_t c = encoded.channels;
    middle_block_ = register_module("middle_block", Steps());
    middle_block_->add(parts.res_block(c, c));
    middle_block_->add(AttentionBlock(c, heads_for(o, c)));
    middle_block_->add(parts.res_block(c, c));
    return build_output_blocks(parts, encoded);
  }

  Encoded build_input_blocks(const Parts& parts) {
    const IddpmOptions& o = parts.o;
    auto list = register_module("input_blocks", nn::ModuleList());
    auto add = [&](Steps steps) {
      list->push_back(steps);
      input_blocks_.push_back(steps);
    };
    Steps first;
    first->add(conv3x3(o.in_channels, o.ch));
    add(first);
    Encoded e{o.ch, o.resolution, {o.ch}};
    for (size_t level = 0; level < o.ch_mult.size(); ++level) {
      for (int64_t i = 0; i < o.num_res_blocks; ++i) {
        Steps steps;
        steps->add(parts.res_block(e.channels, o.ch * o.ch_mult[level]));
        e.channels = o.ch * o.ch_mult[level];
        parts.add_attention(*steps, e.channels, e.resolution);
        add(steps);
        e.skip_channels.push_back(e.channels);
      }
      if (level + 1 < o.ch_mult.size()) {
        Steps steps;
        parts.add_resample(*steps, e.channels, -1);
        add(steps);
        e.skip_channels.push_back(e.channels);
        e.resolution /= 2;
      }
    }
    return e;
  }

  int64_t build_output_blocks(const Parts& parts, Encoded e) {
    const IddpmOptions& o = parts.o;
    auto list = register_module("output_blocks", nn::ModuleList());
    for (size_t level = o.ch_mult.size(); level-- > 0;) {
      for (int64_t i = 0; i <= o.num_res_blocks; ++i) {
        Steps steps;
        const int64_t out = o.ch * o.ch_mult[level];
        steps->add(parts.res_block(e.channels + e.skip_channels.back(), out));
        e.skip_channels.pop_back();
        e.channels = out;
        parts.add_attention(*steps, e.channels, e.resolution);
        if (level > 0 && i == o.num_res_blocks) {
          parts.add_resample(*steps, e.channels, +1);
          e.resolution *= 2;
        }
        list->push_back(steps);
        output_blocks_.push_back(steps);
      }
    }
    return e.channels;
  }

  int64_t ch_, in_channels_;
  bool learn_sigma_;
  TimeInput time_input_;
  nn::Sequential time_embed_{nullptr};
  std::vector<Steps> input_blocks_, output_blocks_;
  Steps middle_block_{nullptr};
  nn::GroupNorm out_norm_{nullptr};
  nn::Conv2d out_conv_{nullptr};
};

// The head as the OCM code attaches it to this network ("out2"): the network's own output
// layers [norm, SiLU, conv], with a residual block in front for the complex head.
class IddpmHead : public Head {
 public:
  explicit IddpmHead(const HeadOptions& o) {
    auto out2 = register_module("out2", nn::ModuleList());
    if (o.kind == "complex") {
      block_ = ResBlock(o.feature_channels, o.feature_channels, o.time_embedding_dim, o.dropout,
                        o.scale_shift_norm);
      out2->push_back(block_);
    }
    norm_ = normalization(o.feature_channels);
    conv_ = conv3x3(o.feature_channels, o.out_channels);
    layers::zero_init(*conv_);
    out2->push_back(norm_);
    out2->push_back(nn::SiLU());
    out2->push_back(conv_);
  }

  torch::Tensor forward(const torch::Tensor& features,
                        const torch::Tensor& time_embedding) override {
    const torch::Tensor h = block_ ? block_(features, time_embedding) : features;
    return conv_(torch::silu(group_norm_fp32(norm_, h)));
  }

 private:
  ResBlock block_{nullptr};
  nn::GroupNorm norm_{nullptr};
  nn::Conv2d conv_{nullptr};
};

}  // namespace

std::shared_ptr<torch::nn::Module> make_unet(const IddpmOptions& options) {
  return std::make_shared<IddpmUNet>(options);
}

std::shared_ptr<Head> make_head(const HeadOptions& options) {
  return std::make_shared<IddpmHead>(options);
}

}  // namespace ocm::diffusion::iddpm
