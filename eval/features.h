#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include "data/dataset.h"
#include "dist/communicator.h"
#include "eval/statistics.h"

namespace ocm::eval {

// Note [feature networks]
// FID is the Frechet distance between Inception-v3 pool features of real and generated images,
// computed with the TorchScript export used by StyleGAN and EDM (inception-2015-12-05.pt: uint8
// [N, 3, H, W] in, 2048 features out; see docs/evaluation.md for where to get it). Any
// TorchScript file that maps uint8 images to [N, D] features can be used; reports call the
// result FID only for 2048-dimensional features of a TorchScript network, and FD (with the
// network's file name) otherwise. For data Inception does not suit, such as 28x28 grey
// Fashion-MNIST, `ocm classifier train` trains a small CNN (diffusion/classifier.h) whose pooled
// 128-d features serve.
class FeatureNetwork {
 public:
  virtual ~FeatureNetwork() = default;
  // uint8 images [N, H, W, C] -> float64 features [N, D] on the CPU.
  virtual torch::Tensor features(const torch::Tensor& images) = 0;
  virtual int64_t dim() const = 0;
  // "inception-2015-12-05.pt (sha256 1a2b3c4d...)": recorded beside every value.
  virtual std::string description() const = 0;
  // fid for Inception-like TorchScript features, fd otherwise.
  virtual std::string metric() const = 0;
  // Whether the network also classifies (Note [class probabilities]).
  virtual bool classifies() const = 0;
  // uint8 images [N, H, W, C] -> float64 class probabilities [N, classes] on the CPU; throws
  // UserError naming the network when it does not classify.
  virtual torch::Tensor class_probabilities(const torch::Tensor& images) = 0;
};

// Note [class probabilities]
// The Inception Score needs p(y|x). The Inception export's forward takes `return_features`:
// with it, pool features; without it, class probabilities, and StyleGAN3's inception_score.py
// passes `no_output_bias=True` to match the original TensorFlow score, so we pass it too where
// the forward has that argument. A TorchScript network classifies when its forward has
// `return_features`; its output without the flag is taken as probabilities when every row is
// non-negative and sums to 1 (within 1e-3), and as logits (softmax in float64) otherwise. A
// classifier of `ocm classifier train` classifies: softmax of its logits.

// A TorchScript file (.pt) or a classifier of `ocm classifier train` (its directory or a
// checkpoint). Runs the network once on a probe batch of the given image shape [H, W, C] and
// throws UserError naming the file when it does not produce [N, D] features.
std::unique_ptr<FeatureNetwork> load_feature_network(const std::string& path,
                                                     const std::vector<int64_t>& image_shape,
                                                     const torch::Device& device);

// Features of the first `count` elements of an image dataset's `split`, each rank taking its
// share in batches of `batch`; the sums are added over the ranks. What `ocm stats` writes and
// what `ocm eval` compares with when it is given no reference statistics.
FeatureSums dataset_feature_sums(const data::Dataset& dataset, const std::string& split,
                                 int64_t count, FeatureNetwork& network,
                                 dist::Communicator& communicator, int64_t batch);

// The features [count, D] (float64) of the first `count` elements of an image dataset's `split`,
// in index order on every rank; each rank extracts its share. The real side of precision and
// recall.
torch::Tensor dataset_features(const data::Dataset& dataset, const std::string& split,
                               int64_t count, FeatureNetwork& network,
                               dist::Communicator& communicator, int64_t batch);

}  // namespace ocm::eval
