#include "eval/trained_model.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "checkpoints/layout.h"
#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "diffusion/networks.h"
#include "eval/mixture_truth.h"

namespace ocm::eval {
namespace {

// Loads the weights under `prefix` and freezes the module for sampling on `device`.
void load_frozen(torch::nn::Module& module, const std::string& prefix,
                 const checkpoints::Checkpoint& c, const std::string& where,
                 const torch::Device& device) {
  checkpoints::load_tensors(prefix, c.tensors, checkpoints::named_parameters(module), where);
  module.to(device);
  module.eval();
  for (auto& p : module.parameters())
    p.set_requires_grad(false);
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
  std::optional<checkpoints::SampleShape> sample = checkpoints::read_sample_shape(c.tensors);
  if (!sample) {  // checkpoints written before the shape was recorded: ask the dataset
    const data::Manifest manifest = data::read_manifest(m.config.data.path);
    sample = checkpoints::sample_shape_of(manifest.kind, manifest.element_shape);
  }
  m.sample_shape = sample->shape;
  m.images = sample->images;
  // Sampling uses the EMA weights: the score phase's own, or the OCM phase's frozen trunk (which
  // is that EMA) and the head's EMA.
  namespace prefix = checkpoints::prefix;
  m.network = diffusion::make_network(m.config, m.sample_shape);
  load_frozen(*m.network, c.phase == "ocm" ? prefix::kTrunk : prefix::kEma, c, m.checkpoint_path,
              device);
  if (c.phase == "ocm") {
    m.head = diffusion::make_head(m.config.model, m.sample_shape);
    load_frozen(*m.head, prefix::kHeadEma, c, m.checkpoint_path, device);
  }
  m.schedule = std::make_unique<diffusion::Schedule>(m.config.diffusion.schedule,
                                                     m.config.diffusion.num_timesteps);
  m.denoiser = std::make_unique<diffusion::NetworkDenoiser>(diffusion::as_trunk(m.network), m.head);
  if (!m.images && files::exists(files::join(m.config.data.path, "manifest.json"))) {
    const data::Manifest manifest = data::read_manifest(m.config.data.path);
    if (manifest.mixture)
      m.truth = mixture_model(*manifest.mixture, *m.schedule);
  }
  spdlog::info("loaded {} (step {}, phase {}{})", m.checkpoint_path, m.step, m.phase,
               m.head ? ", with the OCM head" : ", no OCM head yet");
  return m;
}

HeldOutElements held_out_elements(const TrainedModel& model) {
  auto dataset = std::make_shared<const data::Dataset>(model.config.data.path);
  const std::string split = dataset->manifest().splits.count("test") ? "test" : "train";
  HeldOutElements held_out;
  held_out.description = model.config.data.path + " " + split;
  held_out.count = dataset->size(split);
  held_out.read = [dataset, split, device = model.device](const std::vector<int64_t>& indices) {
    return data::read_model_input(*dataset, split, indices, device);
  };
  return held_out;
}

}  // namespace ocm::eval
