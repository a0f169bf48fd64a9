// The MLP for vector (toy or latent) data and its OCM head.
#include <torch/torch.h>

#include "diffusion/families.h"
#include "diffusion/layers.h"

namespace ocm::diffusion::mlp {
namespace {

namespace nn = torch::nn;

class Mlp : public nn::Module, public Trunk {
 public:
  explicit Mlp(const MlpOptions& o) : width_(o.width), time_input_(o.time_input) {
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
    layers::zero_init(*output_);
  }

  TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) override {
    const torch::Tensor embedding =
        sin_cos_embedding(time_input_.network_time(t), width_).to(x.dtype());
    const torch::Tensor time_embedding = time_out_(torch::silu(time_in_(embedding)));
    torch::Tensor h = input_(x);
    for (size_t i = 0; i < first_.size(); ++i) {
      const torch::Tensor inner =
          first_[i](torch::silu(h)) + time_proj_[i](torch::silu(time_embedding));
      h = h + second_[i](torch::silu(inner));
    }
    return {output_(torch::silu(h)), h, time_embedding, {}};
  }

 private:
  int64_t width_;
  TimeInput time_input_;
  nn::Linear input_{nullptr}, time_in_{nullptr}, time_out_{nullptr}, output_{nullptr};
  std::vector<nn::Linear> first_, time_proj_, second_;
};

class MlpHead : public Head {
 public:
  explicit MlpHead(const HeadOptions& o)
      : features_(register_module("features", nn::Linear(o.feature_channels, o.width))),
        time_(register_module("time", nn::Linear(o.time_embedding_dim, o.width))),
        hidden_(register_module("hidden", nn::Linear(o.width, o.width))),
        output_(register_module("output", nn::Linear(o.width, o.out_channels))) {
    layers::zero_init(*output_);
  }
  torch::Tensor forward(const torch::Tensor& features,
                        const torch::Tensor& time_embedding) override {
    const torch::Tensor h = torch::silu(features_(features) + time_(time_embedding));
    return output_(torch::silu(hidden_(h)));
  }

 private:
  nn::Linear features_, time_, hidden_, output_;
};

}  // namespace

std::shared_ptr<torch::nn::Module> make_network(const MlpOptions& options) {
  return std::make_shared<Mlp>(options);
}

std::shared_ptr<Head> make_head(const HeadOptions& options) {
  return std::make_shared<MlpHead>(options);
}

}  // namespace ocm::diffusion::mlp
