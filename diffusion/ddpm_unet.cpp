// The DDPM UNet of Ho et al. (2020), laid out parameter for parameter as its widely used PyTorch
// port, so that published checkpoints load by name (Note [published networks] in networks.h).
#include <torch/torch.h>

#include "diffusion/families.h"
#include "diffusion/layers.h"

namespace ocm::diffusion::ddpm {
namespace {

namespace nn = torch::nn;
using layers::conv2d;
using layers::conv3x3;

constexpr double kNormEps = 1e-6;

nn::GroupNorm normalize(int64_t channels) {
  return layers::group_norm(channels, kNormEps);
}

class ResnetBlockImpl : public nn::Module {
 public:
  ResnetBlockImpl(int64_t in, int64_t out, int64_t time_dim, double dropout)
      : norm1_(register_module("norm1", normalize(in))),
        conv1_(register_module("conv1", conv3x3(in, out))),
        temb_proj_(register_module("temb_proj", nn::Linear(time_dim, out))),
        norm2_(register_module("norm2", normalize(out))),
        dropout_(register_module("dropout", nn::Dropout(dropout))),
        conv2_(register_module("conv2", conv3x3(out, out))) {
    if (in != out)
      nin_shortcut_ = register_module("nin_shortcut", conv2d(in, out, 1));
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time_embedding) {
    torch::Tensor h = conv1_(torch::silu(norm1_(x)));
    h = h + temb_proj_(torch::silu(time_embedding)).unsqueeze(-1).unsqueeze(-1);
    h = conv2_(dropout_(torch::silu(norm2_(h))));
    return (nin_shortcut_ ? nin_shortcut_(x) : x) + h;
  }

 private:
  nn::GroupNorm norm1_;
  nn::Conv2d conv1_;
  nn::Linear temb_proj_;
  nn::GroupNorm norm2_;
  nn::Dropout dropout_;
  nn::Conv2d conv2_;
  nn::Conv2d nin_shortcut_{nullptr};
};
TORCH_MODULE(ResnetBlock);

// Single-head self-attention over the pixels, scaled by 1/sqrt(C).
class AttnBlockImpl : public nn::Module {
 public:
  explicit AttnBlockImpl(int64_t channels)
      : norm_(register_module("norm", normalize(channels))),
        q_(register_module("q", conv2d(channels, channels, 1))),
        k_(register_module("k", conv2d(channels, channels, 1))),
        v_(register_module("v", conv2d(channels, channels, 1))),
        proj_out_(register_module("proj_out", conv2d(channels, channels, 1))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    const torch::Tensor h = norm_(x);
    const torch::Tensor q = q_(h).reshape({b, c, hw}).transpose(1, 2);  // [B, HW, C]
    const torch::Tensor k = k_(h).reshape({b, c, hw});                  // [B, C, HW]
    const torch::Tensor v = v_(h).reshape({b, c, hw}).transpose(1, 2);  // [B, HW, C]
    const torch::Tensor weights =
        torch::softmax(torch::bmm(q, k) / std::sqrt(static_cast<double>(c)), -1);
    const torch::Tensor attended = torch::bmm(weights, v).transpose(1, 2).reshape(x.sizes());
    return x + proj_out_(attended);
  }

 private:
  nn::GroupNorm norm_;
  nn::Conv2d q_, k_, v_, proj_out_;
};
TORCH_MODULE(AttnBlock);

// Note [asymmetric downsampling]
// The DDPM network halves a feature map with a 3x3 stride-2 conv after padding one zero row and
// column on the bottom and right only (TensorFlow's SAME padding), not one on every side: the
// weights are the same shape either way, but a published checkpoint only reproduces its outputs
// with the padding it was trained with.
class ResampleImpl : public nn::Module {
 public:
  ResampleImpl(int64_t channels, bool down)
      : down_(down),
        conv_(register_module(
            "conv", down ? conv2d(channels, channels, 3, 2) : conv3x3(channels, channels))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    if (down_)
      return conv_(torch::constant_pad_nd(x, {0, 1, 0, 1}));
    return conv_(layers::upsample_nearest(x));
  }

 private:
  bool down_;
  nn::Conv2d conv_;
};
TORCH_MODULE(Resample);

// One resolution level: residual blocks ("block"), the attention after each ("attn", at some
// resolutions), then a resampling conv ("downsample" or "upsample") except at the far end.
class LevelImpl : public nn::Module {
 public:
  LevelImpl()
      : block_list_(register_module("block", nn::ModuleList())),
        attn_list_(register_module("attn", nn::ModuleList())) {}

  void add(ResnetBlock block, AttnBlock attention) {
    block_list_->push_back(block);
    blocks_.push_back(block);
    if (attention) {
      attn_list_->push_back(attention);
      attentions_.push_back(attention);
    }
  }
  void set_resample(int64_t channels, bool down) {
    resample_ = register_module(down ? "downsample" : "upsample", Resample(channels, down));
  }

  size_t size() const { return blocks_.size(); }
  torch::Tensor block(size_t i, const torch::Tensor& x, const torch::Tensor& time_embedding) {
    const torch::Tensor h = blocks_[i](x, time_embedding);
    return attentions_.empty() ? h : attentions_[i](h);
  }
  torch::Tensor resample(const torch::Tensor& x) { return resample_ ? resample_(x) : x; }

 private:
  nn::ModuleList block_list_, attn_list_;
  std::vector<ResnetBlock> blocks_;
  std::vector<AttnBlock> attentions_;
  Resample resample_{nullptr};
};
TORCH_MODULE(Level);

class DdpmUNet : public nn::Module, public Trunk {
 public:
  explicit DdpmUNet(const UNetOptions& o) : ch_(o.ch), time_input_(o.time_input) {
    const int64_t time_dim = 4 * o.ch;
    auto temb = register_module("temb", std::make_shared<nn::Module>());
    auto dense = temb->register_module("dense", nn::ModuleList());
    time_in_ = nn::Linear(o.ch, time_dim);
    time_out_ = nn::Linear(time_dim, time_dim);
    dense->push_back(time_in_);
    dense->push_back(time_out_);
    conv_in_ = register_module("conv_in", conv3x3(o.in_channels, o.ch));
    const int64_t channels = build_levels(o, time_dim);
    norm_out_ = register_module("norm_out", normalize(channels));
    conv_out_ = register_module("conv_out", conv3x3(channels, o.in_channels));
    layers::zero_init(*conv_out_);
  }

  TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) override {
    const torch::Tensor embedding =
        sin_cos_embedding(time_input_.network_time(t), ch_).to(x.dtype());
    const torch::Tensor time_embedding = time_out_(torch::silu(time_in_(embedding)));
    std::vector<torch::Tensor> skips = {conv_in_(x)};
    for (size_t level = 0; level < down_.size(); ++level) {
      for (size_t i = 0; i < down_[level]->size(); ++i)
        skips.push_back(down_[level]->block(i, skips.back(), time_embedding));
      if (level + 1 < down_.size())
        skips.push_back(down_[level]->resample(skips.back()));
    }
    torch::Tensor h =
        mid_block_2_(mid_attn_1_(mid_block_1_(skips.back(), time_embedding)), time_embedding);
    for (size_t level = up_.size(); level-- > 0;) {
      for (size_t i = 0; i < up_[level]->size(); ++i) {
        h = up_[level]->block(i, torch::cat({h, skips.back()}, 1), time_embedding);
        skips.pop_back();
      }
      h = up_[level]->resample(h);
    }
    return {conv_out_(torch::silu(norm_out_(h))), h, time_embedding, {}};
  }

 private:
  // Registers down.*, mid.* and up.* and returns the channel count of the last feature map.
  int64_t build_levels(const UNetOptions& o, int64_t time_dim) {
    auto attention_at = [&](int64_t resolution, int64_t channels) {
      const bool wanted =
          std::count(o.attn_resolutions.begin(), o.attn_resolutions.end(), resolution) > 0;
      return wanted ? AttnBlock(channels) : AttnBlock(nullptr);
    };
    auto down_list = register_module("down", nn::ModuleList());
    std::vector<int64_t> skip_channels = {o.ch};
    int64_t channels = o.ch, resolution = o.resolution;
    const size_t levels = o.ch_mult.size();
    for (size_t level = 0; level < levels; ++level) {
      Level down;
      const int64_t out = o.ch * o.ch_mult[level];
      for (int64_t i = 0; i < o.num_res_blocks; ++i) {
        down->add(ResnetBlock(channels, out, time_dim, o.dropout), attention_at(resolution, out));
        channels = out;
        skip_channels.push_back(channels);
      }
      if (level + 1 < levels) {
        down->set_resample(channels, true);
        skip_channels.push_back(channels);
        resolution /= 2;
      }
      down_list->push_back(down);
      down_.push_back(down);
    }
    auto mid = register_module("mid", std::make_shared<nn::Module>());
    mid_block_1_ =
        mid->register_module("block_1", ResnetBlock(channels, channels, time_dim, o.dropout));
    mid_attn_1_ = mid->register_module("attn_1", AttnBlock(channels));
    mid_block_2_ =
        mid->register_module("block_2", ResnetBlock(channels, channels, time_dim, o.dropout));
    up_.resize(levels);  // built from the lowest resolution up, listed as up.0 (full size) first
    for (size_t level = levels; level-- > 0;) {
      Level up;
      const int64_t out = o.ch * o.ch_mult[level];
      for (int64_t i = 0; i <= o.num_res_blocks; ++i) {
        up->add(ResnetBlock(channels + skip_channels.back(), out, time_dim, o.dropout),
                attention_at(resolution, out));
        skip_channels.pop_back();
        channels = out;
      }
      if (level > 0) {
        up->set_resample(channels, false);
        resolution *= 2;
      }
      up_[level] = up;
    }
    auto up_list = register_module("up", nn::ModuleList());
    for (const Level& up : up_)
      up_list->push_back(up);
    return channels;
  }

  int64_t ch_;
  TimeInput time_input_;
  nn::Linear time_in_{nullptr}, time_out_{nullptr};
  nn::Conv2d conv_in_{nullptr};
  std::vector<Level> down_, up_;
  ResnetBlock mid_block_1_{nullptr}, mid_block_2_{nullptr};
  AttnBlock mid_attn_1_{nullptr};
  nn::GroupNorm norm_out_{nullptr};
  nn::Conv2d conv_out_{nullptr};
};

// The head as the OCM code attaches it to this network: (complex only: one more residual block,
// "before_out"), then GroupNorm-SiLU-conv ("norm_out2", "conv_out2") on the decoder's last
// features, the same shape as the network's own output layers.
class DdpmHead : public Head {
 public:
  explicit DdpmHead(const HeadOptions& o)
      : norm_out2_(register_module("norm_out2", normalize(o.feature_channels))),
        conv_out2_(register_module("conv_out2", conv3x3(o.feature_channels, o.out_channels))) {
    if (o.kind == "complex") {
      before_out_ = register_module(
          "before_out",
          ResnetBlock(o.feature_channels, o.feature_channels, o.time_embedding_dim, o.dropout));
    }
    layers::zero_init(*conv_out2_);
  }

  torch::Tensor forward(const torch::Tensor& features,
                        const torch::Tensor& time_embedding) override {
    const torch::Tensor h = before_out_ ? before_out_(features, time_embedding) : features;
    return conv_out2_(torch::silu(norm_out2_(h)));
  }

 private:
  nn::GroupNorm norm_out2_;
  nn::Conv2d conv_out2_;
  ResnetBlock before_out_{nullptr};
};

}  // namespace

std::shared_ptr<torch::nn::Module> make_unet(const UNetOptions& options) {
  return std::make_shared<DdpmUNet>(options);
}

std::shared_ptr<Head> make_head(const HeadOptions& options) {
  return std::make_shared<DdpmHead>(options);
}

}  // namespace ocm::diffusion::ddpm
