#include "eval/features.h"

#include <fstream>

#include <torch/script.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "checkpoints/layout.h"
#include "common/error.h"
#include "common/files.h"
#include "common/sha256.h"
#include "data/loader.h"
#include "diffusion/classifier.h"
#include "eval/batches.h"

namespace ocm::eval {
namespace {

// The file's name and the start of its SHA-256; for a classifier directory, its newest
// checkpoint's.
std::string describe(const std::string& path) {
  std::string file = path;
  if (files::is_directory(path)) {
    std::ifstream latest(files::join(path, "checkpoints/latest"));
    std::string name;
    std::getline(latest, name);
    file = files::join(path, "checkpoints/" + name);
  }
  const std::string digest =
      files::is_regular_file(file) ? sha256_file(file).substr(0, 12) : std::string("unknown");
  return files::filename(path) + " (sha256 " + digest + ")";
}

class TorchScriptFeatures : public FeatureNetwork {
 public:
  TorchScriptFeatures(const std::string& path, const torch::Device& device)
      : path_(path), description_(describe(path)), device_(device) {
    try {
      module_ = torch::jit::load(path, device);
    } catch (const c10::Error& e) {
      throw UserError(path, "is not a TorchScript file LibTorch can load",
                      "a feature network saved with torch.jit.save, such as "
                      "inception-2015-12-05.pt (docs/evaluation.md)");
    }
    module_.eval();
    const auto& schema = module_.get_method("forward").function().getSchema();
    for (const auto& argument : schema.arguments())
      schema_arguments_.push_back(argument.name());
  }

  torch::Tensor features(const torch::Tensor& images) override {
    const torch::Tensor f = matrix_of(images, {{"return_features", true}}, "features");
    dim_ = f.size(1);
    return f;
  }
  int64_t dim() const override { return dim_; }
  std::string description() const override { return description_; }
  std::string metric() const override { return dim_ == 2048 ? "fid" : "fd"; }
  bool classifies() const override { return forward_has("return_features"); }

  torch::Tensor class_probabilities(const torch::Tensor& images) override {
    if (!classifies())
      throw UserError(path_, "has no classifier output (its forward takes no return_features)",
                      "a network like inception-2015-12-05.pt for the Inception Score");
    torch::jit::Kwargs options;
    if (forward_has("no_output_bias"))
      options.emplace("no_output_bias", true);
    const torch::Tensor out = matrix_of(images, options, "class probabilities");
    const bool probabilities =
        out.min().item<double>() >= 0 && (out.sum(1) - 1).abs().max().item<double>() <= 1e-3;
    return probabilities ? out : torch::softmax(out, 1);
  }

 private:
  bool forward_has(const std::string& name) const {
    for (const auto& argument : schema_arguments_)
      if (argument == name)
        return true;
    return false;
  }

  // The forward's [N, M] output for uint8 images [N, H, W, C], float64 on the CPU; `options`
  // go to the forward where it takes them.
  torch::Tensor matrix_of(const torch::Tensor& images, const torch::jit::Kwargs& options,
                          const std::string& what) {
    torch::NoGradGuard no_grad;
    torch::Tensor x = images.permute({0, 3, 1, 2}).contiguous().to(device_);
    if (x.size(1) == 1)
      x = x.expand({-1, 3, -1, -1}).contiguous();  // grey images as RGB
    torch::jit::Kwargs accepted;
    for (const auto& [name, value] : options)
      if (forward_has(name))
        accepted.emplace(name, value);
    torch::jit::IValue out;
    try {
      out = module_.forward({x}, accepted);
    } catch (const std::exception& e) {
      throw UserError(path_, "failed on uint8 images of shape " + c10::str(x.sizes()),
                      "a network that maps uint8 [N, 3, H, W] images to [N, D] " + what);
    }
    if (!out.isTensor())
      throw UserError(path_, "returned something other than a tensor", "[N, D] " + what);
    const torch::Tensor f = out.toTensor();
    if (f.dim() != 2 || f.size(0) != images.size(0) || !f.is_floating_point())
      throw UserError(path_,
                      "returned a " + std::string(c10::toString(f.scalar_type())) +
                          " tensor of shape " + c10::str(f.sizes()) + " for " +
                          std::to_string(images.size(0)) + " images",
                      "floating-point " + what + " of shape [N, D]");
    return f.to(torch::kFloat64).cpu();
  }

  std::string path_;
  std::string description_;
  torch::Device device_;
  torch::jit::Module module_;
  std::vector<std::string> schema_arguments_;  // the forward's argument names
  int64_t dim_ = 0;
};

// A classifier of `ocm classifier train`: its directory (newest valid checkpoint) or a file.
diffusion::Classifier load_classifier(const std::string& path, const torch::Device& device) {
  checkpoints::Checkpoint c;
  std::string where = path;
  if (files::is_directory(path)) {
    auto found = checkpoints::load_newest_valid(files::join(path, "checkpoints"));
    if (!found)
      throw UserError(path, "has no valid classifier checkpoint",
                      "a directory written by `ocm classifier train`");
    where = found->path;
    c = std::move(found->checkpoint);
  } else {
    c = checkpoints::load_checkpoint(path);
  }
  const int64_t channels =
      checkpoints::read_counter(c.tensors, checkpoints::kClassifierChannels, 0);
  const int64_t classes = checkpoints::read_counter(c.tensors, checkpoints::kClassifierClasses, 0);
  if (c.phase != "classifier" || channels < 1 || classes < 1)
    throw UserError(where, "is not a classifier checkpoint",
                    "one written by `ocm classifier train`");
  diffusion::Classifier net(channels, classes);
  checkpoints::load_tensors(checkpoints::prefix::kClassifier, c.tensors,
                            checkpoints::named_parameters(*net), where);
  net->to(device);
  net->eval();
  return net;
}

class ClassifierFeatures : public FeatureNetwork {
 public:
  ClassifierFeatures(const std::string& path, const torch::Device& device)
      : net_(load_classifier(path, device)), description_(describe(path)), device_(device) {}
  torch::Tensor features(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    return net_->features(data::images_to_float(images).to(device_)).to(torch::kFloat64).cpu();
  }
  int64_t dim() const override { return 128; }
  std::string description() const override { return "ocm classifier " + description_; }
  std::string metric() const override { return "fd"; }
  bool classifies() const override { return true; }
  torch::Tensor class_probabilities(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = net_->forward(data::images_to_float(images).to(device_));
    return torch::softmax(logits.to(torch::kFloat64), 1).cpu();
  }

 private:
  diffusion::Classifier net_;
  std::string description_;
  torch::Device device_;
};

}  // namespace

std::unique_ptr<FeatureNetwork> load_feature_network(const std::string& path,
                                                     const std::vector<int64_t>& image_shape,
                                                     const torch::Device& device) {
  if (!files::exists(path))
    throw UserError(path, "does not exist",
                    "a TorchScript feature network (.pt) or a classifier directory of "
                    "`ocm classifier train`");
  std::unique_ptr<FeatureNetwork> network;
  if (files::is_directory(path) || files::extension(path) == ".h5")
    network = std::make_unique<ClassifierFeatures>(path, device);
  else
    network = std::make_unique<TorchScriptFeatures>(path, device);
  // A probe batch: the network must produce [N, D] features for these images.
  const torch::Tensor probe =
      torch::zeros({2, image_shape[0], image_shape[1], image_shape[2]}, torch::kUInt8);
  try {
    network->features(probe);
  } catch (const c10::Error& e) {
    throw UserError(path, "cannot run on images of shape " + c10::str(probe.sizes()),
                    "a feature network for this data");
  }
  return network;
}

FeatureSums dataset_feature_sums(const data::Dataset& dataset, const std::string& split,
                                 int64_t count, FeatureNetwork& network,
                                 dist::Communicator& communicator, int64_t batch) {
  FeatureSums sums(network.dim());
  const std::vector<int64_t> mine = share_of(count, communicator.rank(), communicator.world_size());
  for (const auto& chunk : batches_of(mine, batch))
    sums.add(network.features(data::read_elements(dataset, split, chunk)));
  sums.reduce(communicator);
  return sums;
}

torch::Tensor dataset_features(const data::Dataset& dataset, const std::string& split,
                               int64_t count, FeatureNetwork& network,
                               dist::Communicator& communicator, int64_t batch) {
  std::vector<torch::Tensor> parts;
  const std::vector<int64_t> mine = share_of(count, communicator.rank(), communicator.world_size());
  for (const auto& chunk : batches_of(mine, batch))
    parts.push_back(network.features(data::read_elements(dataset, split, chunk)));
  return all_shares(torch::cat(parts), count, communicator);
}

}  // namespace ocm::eval
