#include "eval/trained_model.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "diffusion/networks.h"

namespace ocm::eval {
namespace {

void load_prefix(torch::nn::Module& module, const std::string& prefix,
                 const checkpoints::Checkpoint& c, const std::string& where) {
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters()) {
    const auto found = c.tensors.find(prefix + "/" + item.key());
    if (found == c.tensors.end())
      throw UserError(where, "has no tensor `" + prefix + "/" + item.key() + "`",
                      "a checkpoint written by `ocm train` for this model");
    if (found->second.sizes() != item.value().sizes())
      throw UserError(where + ":" + found->first, "has shape " + c10::str(found->second.sizes()),
                      c10::str(item.value().sizes()), "The checkpoint does not match its config.");
    item.value().copy_(found->second);
  }
}

}  // namespace

TrainedModel load_trained_model(const std::string& path, const torch::Device& device) {
  TrainedModel m;
  checkpoints::Checkpoint c;
  if (!files::exists(path))
    throw UserError(path, "does not exist", "a run directory of `ocm train` or a checkpoint file");
  if (files::is_directory(path)) {
    auto found = checkpoints::load_newest_valid(files::join(path, "checkpoints"));
    if (!found)
      throw UserError(path, "has no valid checkpoint in checkpoints/",
                      "a run directory of `ocm train`, or a checkpoint file");
    m.checkpoint_path = found->path;
    c = std::move(found->checkpoint);
    m.run_dir = path;
  } else {
    c = checkpoints::load_checkpoint(path);
    m.checkpoint_path = path;
    m.run_dir = files::parent(files::parent(path));
  }
  m.config = parse_config(c.config_yaml, m.checkpoint_path + " (its recorded config)");
  m.step = c.step;
  m.phase = c.phase;
  m.device = device;
  const auto shape = c.tensors.find("data/sample_shape");
  const auto images = c.tensors.find("data/images");
  if (shape != c.tensors.end() && images != c.tensors.end()) {
    const torch::Tensor s = shape->second.to(torch::kInt64).contiguous();
    m.sample_shape.assign(s.data_ptr<int64_t>(), s.data_ptr<int64_t>() + s.numel());
    m.images = images->second.item<int64_t>() != 0;
  } else {  // checkpoints written before these were recorded: ask the dataset
    const data::Manifest manifest = data::read_manifest(m.config.data.path);
    const auto& e = manifest.element_shape;
    m.images = manifest.kind == "images";
    m.sample_shape = m.images ? std::vector<int64_t>{e[2], e[0], e[1]} : e;
  }
  m.network = diffusion::make_network(m.config.model, m.sample_shape);
  load_prefix(*m.network, c.phase == "ocm" ? "trunk" : "ema", c, m.checkpoint_path);
  m.network->to(device);
  m.network->eval();
  for (auto& p : m.network->parameters())
    p.set_requires_grad(false);
  if (c.phase == "ocm") {
    m.head = diffusion::make_head(m.config.model, m.sample_shape);
    load_prefix(*m.head, "head_ema", c, m.checkpoint_path);
    m.head->to(device);
    m.head->eval();
    for (auto& p : m.head->parameters())
      p.set_requires_grad(false);
  }
  m.schedule = std::make_unique<diffusion::Schedule>(m.config.diffusion.schedule,
                                                     m.config.diffusion.num_timesteps);
  m.denoiser = std::make_unique<diffusion::NetworkDenoiser>(diffusion::as_trunk(m.network), m.head);
  spdlog::info("loaded {} (step {}, phase {}{})", m.checkpoint_path, m.step, m.phase,
               m.head ? ", with the OCM head" : ", no OCM head yet");
  return m;
}

}  // namespace ocm::eval
