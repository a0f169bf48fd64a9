#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace ocm::checkpoints {

// Note [checkpoint layout]
// Every tensor of a checkpoint sits under one of these prefixes, followed by "/" and the module's
// dotted parameter name ("ema/down.0.conv.weight"). The score phase writes kModel, kEma and
// kOptimizer; the OCM phase writes its head as kHead and kHeadEma, its Adam as kOptimizer, and
// the frozen trunk (the score phase's EMA) as kTrunk. Counters and what sampling needs without
// the dataset at hand are single tensors named below. Trainer, evaluator and classifier all read
// and write through this file, so a name exists in one place; renaming one breaks every
// checkpoint already written, so they never change. The names after a prefix are the networks'
// own (Note [published networks]); the UNet's changed once, when it took the published DDPM
// layout, and load_tensors names such older checkpoints rather than report missing tensors.
namespace prefix {
inline constexpr char kModel[] = "model";
inline constexpr char kEma[] = "ema";
inline constexpr char kOptimizer[] = "optimizer";
inline constexpr char kTrunk[] = "trunk";
inline constexpr char kHead[] = "head";
inline constexpr char kHeadEma[] = "head_ema";
inline constexpr char kClassifier[] = "classifier/model";
}  // namespace prefix

inline constexpr char kPhaseBegin[] = "counters/phase_begin";      // OCM phase: its first step
inline constexpr char kSkippedSteps[] = "counters/skipped_steps";  // non-finite steps so far
inline constexpr char kGenerator[] = "counters/generator";         // the run's diffusion::Generator
inline constexpr char kSampleShape[] = "data/sample_shape";        // the network's input shape
inline constexpr char kImages[] = "data/images";                   // 1: image data, 0: arrays
inline constexpr char kClassifierChannels[] = "classifier/in_channels";
inline constexpr char kClassifierClasses[] = "classifier/classes";

using TensorMap = std::map<std::string, torch::Tensor>;

// A named parameter list: the order is the module's registration order, the names are the
// module's dotted names.
struct NamedTensors {
  std::vector<std::string> names;
  std::vector<torch::Tensor> tensors;
};
NamedTensors named_parameters(const torch::nn::Module& module);

// Stores `parameters` as "<prefix>/<name>".
void save_tensors(const std::string& prefix, const NamedTensors& parameters, TensorMap& out);
// Copies "<prefix>/<name>" tensors of `in` into `parameters` (no grad), checking each exists with
// the right shape; throws UserError naming `where` otherwise.
void load_tensors(const std::string& prefix, const TensorMap& in, const NamedTensors& parameters,
                  const std::string& where);
// The one tensor `name` of `in` with `shape`; throws UserError naming `where` otherwise.
const torch::Tensor& find_tensor(const TensorMap& in, const std::string& name,
                                 at::IntArrayRef shape, const std::string& where);

// A one-element int64 counter, or `fallback` when the checkpoint predates it.
int64_t read_counter(const TensorMap& in, const std::string& name, int64_t fallback);
void write_counter(TensorMap& out, const std::string& name, int64_t value);

// Note [sample shape]
// Datasets store an image as [H, W, C] bytes (the layout of every image file and of the field's
// sample archives); the networks take [C, H, W]. These two convert the shapes; vector data has no
// channel axis and keeps its shape.
std::vector<int64_t> chw_from_hwc(const std::vector<int64_t>& hwc);
std::vector<int64_t> hwc_from_chw(const std::vector<int64_t>& chw);

// What a sampler needs to know about the data without reading the dataset.
struct SampleShape {
  std::vector<int64_t> shape;  // the network's input: [C, H, W] for images
  bool images = true;
};
// The sample shape of a dataset of `kind` ("images" or "arrays") whose elements are `element`.
SampleShape sample_shape_of(const std::string& kind, const std::vector<int64_t>& element);
// The stored element shape of one sample: [H, W, C] for images.
std::vector<int64_t> element_shape_of(const SampleShape& sample);
void save_sample_shape(const SampleShape& sample, TensorMap& out);
// Nothing for checkpoints written before the shape was recorded.
std::optional<SampleShape> read_sample_shape(const TensorMap& in);

}  // namespace ocm::checkpoints
