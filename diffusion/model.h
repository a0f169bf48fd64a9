#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace ocm::diffusion {

// What an eps-prediction network computes in one pass: the prediction, and the last hidden
// features and time embedding that the OCM head reads (docs/maths.md section 4).
struct TrunkOutput {
  torch::Tensor eps;
  torch::Tensor features;
  torch::Tensor time_embedding;  // [B, E]
  // Learned-sigma networks only (undefined otherwise): the variance output v, whose (v + 1) / 2
  // interpolates the log variance between the posterior's and beta_t.
  torch::Tensor variance;
};

// The score network of phase 1, frozen in phase 2. t holds one timestep in 1..N per sample; the
// network forms its own time input from it (Note [time input] in networks.h).
class Trunk {
 public:
  virtual ~Trunk() = default;
  virtual TrunkOutput forward(const torch::Tensor& x, const torch::Tensor& t) = 0;
};

// The OCM head: h(x_t, t) from the trunk's features, with the shape of x.
class Head : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& features,
                                const torch::Tensor& time_embedding) = 0;
};

// Note [denoising model]
// Samplers, covariance estimators and the likelihood see a model only through this interface:
// eps_theta at one timestep for the whole batch, and optionally the head's h from the same pass.
// A trained network (NetworkDenoiser) and the closed-form Gaussian mixture (GaussianMixture)
// both implement it, which is how the tests tell the maths from the learning. eps is
// differentiable in x when grad mode is on (ocm-mc takes vector-Jacobian products through it).
class DenoisingModel {
 public:
  virtual ~DenoisingModel() = default;
  virtual torch::Tensor eps(const torch::Tensor& x, int64_t t) = 0;
  // Throws UserError when the model has no OCM head.
  virtual std::pair<torch::Tensor, torch::Tensor> eps_and_h(const torch::Tensor& x, int64_t t) = 0;
  // eps and a learned-sigma network's variance output v (TrunkOutput::variance). Throws
  // UserError when the model has none.
  virtual std::pair<torch::Tensor, torch::Tensor> eps_and_variance(const torch::Tensor& x,
                                                                   int64_t t);
};

// A trunk network with an optional head; the head is absent until the OCM phase has run.
class NetworkDenoiser : public DenoisingModel {
 public:
  NetworkDenoiser(std::shared_ptr<Trunk> trunk, std::shared_ptr<Head> head);
  torch::Tensor eps(const torch::Tensor& x, int64_t t) override;
  std::pair<torch::Tensor, torch::Tensor> eps_and_h(const torch::Tensor& x, int64_t t) override;
  std::pair<torch::Tensor, torch::Tensor> eps_and_variance(const torch::Tensor& x,
                                                           int64_t t) override;

 private:
  std::shared_ptr<Trunk> trunk_;
  std::shared_ptr<Head> head_;
};

}  // namespace ocm::diffusion

namespace ocm::diffusion {

// Sinusoidal embeddings of network times [B] into [B, dim], computed in float32. DDPM's:
// sines then cosines, frequencies 10000^(-i / (dim/2 - 1)); improved DDPM's: cosines then sines,
// frequencies 10000^(-i / (dim/2)).
torch::Tensor sin_cos_embedding(const torch::Tensor& time, int64_t dim);
torch::Tensor cos_sin_embedding(const torch::Tensor& time, int64_t dim);

}  // namespace ocm::diffusion
