#include "trainer/import.h"

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "checkpoints/checkpoint.h"
#include "common/error.h"
#include "common/files.h"
#include "common/sha256.h"
#include "data/dataset.h"
#include "diffusion/networks.h"
#include "trainer/optimizer.h"
#include "trainer/run.h"

namespace ocm::trainer {
namespace {

void refuse_existing_run(const std::string& dir) {
  const std::string checkpoints = files::join(dir, "checkpoints");
  if (files::is_directory(checkpoints) && !files::list_directory(checkpoints).empty()) {
    throw UserError(dir, "already holds checkpoints", "a new run directory (run.dir)",
                    "Import into another directory, or remove this run first.");
  }
}

checkpoints::Checkpoint score_phase_end(const Config& config, const NamedTensors& parameters,
                                        const checkpoints::SampleShape& sample) {
  checkpoints::Checkpoint c;
  c.step = config.phases.score.steps;
  c.phase = "score";
  c.config_hash = config_hash(config);
  c.config_yaml = to_yaml(config);
  checkpoints::save_tensors(checkpoints::prefix::kModel, parameters, c.tensors);
  Ema(parameters, config.phases.score.ema).save(checkpoints::prefix::kEma, c.tensors);
  checkpoints::write_counter(c.tensors, checkpoints::kSkippedSteps, 0);
  checkpoints::write_counter(
      c.tensors, checkpoints::kGenerator,
      static_cast<int64_t>(diffusion::generator_named(config.run.generator)));
  checkpoints::save_sample_shape(sample, c.tensors);
  return c;
}

void write_provenance(const Config& config, const ImportRequest& request,
                      const checkpoints::PublishedWeights& weights, const ImportResult& result) {
  const nlohmann::json record = {{"source", files::absolute(request.source)},
                                 {"sha256", sha256_file(request.source)},
                                 {"state_dict", weights.key},
                                 {"parameters", result.parameters},
                                 {"left_initial", result.left_initial},
                                 {"checkpoint", result.checkpoint}};
  files::write_text_atomically(files::join(config.run.dir, "import.json"), record.dump(1) + "\n");
}

}  // namespace

ImportResult import_trunk(const Config& config, const ImportRequest& request) {
  refuse_existing_run(config.run.dir);
  const data::Dataset dataset(config.data.path);
  const data::Manifest& manifest = dataset.manifest();
  const auto sample = checkpoints::sample_shape_of(manifest.kind, manifest.element_shape);
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));  // allowed-missing weights
  const auto network = diffusion::make_network(config, sample.shape);
  const NamedTensors parameters = checkpoints::named_parameters(*network);
  const checkpoints::PublishedWeights weights =
      checkpoints::read_published_weights(request.source, request.key);
  ImportResult result;
  result.left_initial =
      checkpoints::copy_published(weights, parameters, request.rules, request.source);
  result.parameters = diffusion::count_parameters(*network);

  const std::string error = files::create_directories(files::join(config.run.dir, "checkpoints"));
  if (!error.empty())
    throw UserError(config.run.dir, "cannot be created (" + error + ")", "a writable run.dir");
  files::write_text_atomically(files::join(config.run.dir, "config.yaml"), to_yaml(config));
  result.checkpoint = checkpoints::save_checkpoint(files::join(config.run.dir, "checkpoints"),
                                                   score_phase_end(config, parameters, sample),
                                                   {1, 0, {config.phases.score.steps}});
  write_provenance(config, request, weights, result);
  return result;
}

}  // namespace ocm::trainer
