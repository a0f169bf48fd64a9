#include "checkpoints/layout.h"

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::checkpoints {

NamedTensors named_parameters(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_parameters()) {
    out.names.push_back(item.key());
    out.tensors.push_back(item.value());
  }
  return out;
}

void save_tensors(const std::string& prefix, const NamedTensors& parameters, TensorMap& out) {
  for (size_t i = 0; i < parameters.names.size(); ++i)
    out[prefix + "/" + parameters.names[i]] = parameters.tensors[i].detach();
}

const torch::Tensor& find_tensor(const TensorMap& in, const std::string& name,
                                 at::IntArrayRef shape, const std::string& where) {
  const auto it = in.find(name);
  if (it == in.end())
    throw UserError(where, "has no tensor `" + name + "`", "a checkpoint of this model");
  if (it->second.sizes() != shape) {
    throw UserError(where + ":" + name, "has shape " + c10::str(it->second.sizes()),
                    c10::str(shape) + ", the shape this config's model has",
                    "The checkpoint belongs to a different model configuration.");
  }
  return it->second;
}

void load_tensors(const std::string& prefix, const TensorMap& in, const NamedTensors& parameters,
                  const std::string& where) {
  // Note [checkpoint layout]: the UNet's names before it took the published layout.
  if (in.count(prefix + "/down0_0_block.norm1.weight") != 0) {
    throw UserError(where, "holds a UNet in the layout of ocm before 0.2 (down0_0_block.*)",
                    "the published DDPM layout (down.0.block.0.*) that this ocm builds",
                    "The layout changed with the padding and normalisation of the published "
                    "network, so the weights cannot be renamed: evaluate the run with the ocm "
                    "that trained it, or train it again.");
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters.names.size(); ++i) {
    const torch::Tensor& p = parameters.tensors[i];
    p.detach().copy_(find_tensor(in, prefix + "/" + parameters.names[i], p.sizes(), where));
  }
}

int64_t read_counter(const TensorMap& in, const std::string& name, int64_t fallback) {
  const auto it = in.find(name);
  return it == in.end() ? fallback : it->second.to(torch::kInt64).item<int64_t>();
}

void write_counter(TensorMap& out, const std::string& name, int64_t value) {
  out[name] = torch::tensor({value}, torch::kInt64);
}

std::vector<int64_t> chw_from_hwc(const std::vector<int64_t>& hwc) {
  return {hwc.at(2), hwc.at(0), hwc.at(1)};
}

std::vector<int64_t> hwc_from_chw(const std::vector<int64_t>& chw) {
  return {chw.at(1), chw.at(2), chw.at(0)};
}

SampleShape sample_shape_of(const std::string& kind, const std::vector<int64_t>& element) {
  const bool images = kind == "images";
  return {images ? chw_from_hwc(element) : element, images};
}

std::vector<int64_t> element_shape_of(const SampleShape& sample) {
  return sample.images ? hwc_from_chw(sample.shape) : sample.shape;
}

void save_sample_shape(const SampleShape& sample, TensorMap& out) {
  out[kSampleShape] = torch::tensor(sample.shape, torch::kInt64);
  write_counter(out, kImages, sample.images ? 1 : 0);
}

std::optional<SampleShape> read_sample_shape(const TensorMap& in) {
  const auto shape = in.find(kSampleShape);
  if (shape == in.end() || in.count(kImages) == 0)
    return std::nullopt;
  const torch::Tensor s = shape->second.to(torch::kInt64).contiguous();
  return SampleShape{{s.data_ptr<int64_t>(), s.data_ptr<int64_t>() + s.numel()},
                     read_counter(in, kImages, 1) != 0};
}

}  // namespace ocm::checkpoints
