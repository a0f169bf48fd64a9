#include "eval/features_pass.h"

#include <algorithm>
#include <cstdio>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/layout.h"
#include "common/clock.h"
#include "common/error.h"
#include "data/dataset.h"
#include "eval/batches.h"
#include "eval/image_files.h"
#include "eval/inception_score.h"
#include "eval/precision_recall.h"

namespace ocm::eval {
namespace {

std::string eta_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(seconds) / 60,
                static_cast<int>(seconds) % 60);
  return text;
}

// The reference statistics of fid / fd: --ref's file, or the run's whole training split.
FeatureStatistics reference_statistics(const EvalRequest& request, const TrainedModel& model,
                                       FeatureNetwork& network, dist::Communicator& communicator) {
  if (!request.reference.empty()) {
    FeatureStatistics s = load_statistics(request.reference);
    if (s.mean.size(0) != network.dim())
      throw UserError(
          request.reference, "holds " + std::to_string(s.mean.size(0)) + "-d statistics",
          std::to_string(network.dim()) + "-d ones like " + network.description() + " makes");
    return s;
  }
  const data::Dataset dataset(model.config.data.path);
  const std::string& split = model.config.data.split;
  const int64_t count = dataset.size(split);
  spdlog::info("reference statistics: {} elements of {} ({})", count, model.config.data.path,
               split);
  return statistics_of(
      dataset_feature_sums(dataset, split, count, network, communicator, request.batch),
      network.description(), model.config.data.path + " " + split);
}

// The real side of precision and recall: the features of the training split's first
// min(num_samples, its size) elements, on every rank.
void load_real_features(const EvalRequest& request, const TrainedModel& model, Reference& r,
                        dist::Communicator& communicator) {
  const data::Dataset dataset(model.config.data.path);
  const std::string& split = model.config.data.split;
  const int64_t count = std::min(request.num_samples, dataset.size(split));
  if (count <= kPrecisionRecallNeighbours)
    throw UserError(model.config.data.path + " " + split,
                    "has " + std::to_string(count) + " elements for precision and recall",
                    "more than k = " + std::to_string(kPrecisionRecallNeighbours));
  spdlog::info("precision/recall: features of {} elements of {} ({})", count,
               model.config.data.path, split);
  r.real_features =
      dataset_features(dataset, split, count, *r.network, communicator, request.batch);
  r.real_source = model.config.data.path + " " + split + "[0:" + std::to_string(count) + "]";
}

// The results of one setting and seed share all but the metric, value and error.
EvalResult result_of(const SamplingSetting& s, const std::string& metric, double value,
                     std::optional<double> error, int64_t n, double seconds,
                     const std::string& features, uint64_t seed) {
  return {s.name(), s.sampler, s.cov,    s.steps, metric,      value, error,
          n,        seconds,   features, s.eta,   s.cov_scale, seed};
}

// This rank's share of one setting's samples through the network: what each metric needs.
struct PassSums {
  std::optional<FeatureSums> frechet;
  std::optional<InceptionScoreSums> inception;
  std::vector<torch::Tensor> features;  // precision / recall
  std::vector<torch::Tensor> samples;   // --save-samples
  torch::Tensor grid;
};

PassSums run_pass(TrainedModel& model, const SamplingSetting& setting,
                  const diffusion::AnalyticTable* table, const Reference& reference,
                  const EvalRequest& request, uint64_t seed, dist::Communicator& communicator,
                  bool keep_samples) {
  const auto start = Clock::now();
  const std::vector<int64_t> mine =
      share_of(request.num_samples, communicator.rank(), communicator.world_size());
  PassSums p;
  if (reference.statistics)
    p.frechet.emplace(reference.network->dim());
  if (request.wants("is"))
    p.inception.emplace(request.num_samples, request.is_splits, reference.classes);
  const bool keep_features = request.wants("pr");
  generate_batches(
      model, setting, table, mine, request.batch, seed,
      [&](const torch::Tensor& images, int64_t done) {
        if (p.frechet || keep_features) {
          const torch::Tensor f = reference.network->features(images);
          if (p.frechet)
            p.frechet->add(f);
          if (keep_features)
            p.features.push_back(f);
        }
        if (p.inception)
          p.inception->add(reference.network->class_probabilities(images),
                           mine[done - images.size(0)]);
        if (keep_samples)
          p.samples.push_back(images.cpu());
        if (!p.grid.defined())
          p.grid = images.narrow(0, 0, std::min<int64_t>(images.size(0), request.grid));
        if (communicator.rank() == 0) {
          const double fraction = static_cast<double>(done) / static_cast<double>(mine.size());
          spdlog::info("{}: {}/{} samples on rank 0, ETA {}", setting.name(), done, mine.size(),
                       eta_text(seconds_since(start) * (1 - fraction) / fraction));
        }
      });
  return p;
}

// Rank 0 writes the grid; every rank gives its samples to rank 0 for --save-samples.
void write_outputs(PassSums& p, const SampleFiles& outputs, dist::Communicator& communicator) {
  if (communicator.rank() == 0 && p.grid.defined())
    write_grid(outputs.grid, p.grid);
  if (outputs.samples.empty())
    return;
  const torch::Tensor all = gather_shares(torch::cat(p.samples));
  if (communicator.rank() == 0)
    write_samples(outputs.samples, all);
}

}  // namespace

Reference load_reference(const EvalRequest& request, const TrainedModel& model,
                         dist::Communicator& communicator) {
  Reference r;
  const std::vector<int64_t> image_shape =
      checkpoints::element_shape_of({model.sample_shape, model.images});
  r.network = load_feature_network(request.features, image_shape, model.device);
  r.metric = r.network->metric();
  if (request.wants("fid") && r.metric != "fid") {
    throw UserError("--metric fid", "needs Inception features (2048-d, TorchScript)",
                    "--metric fd with " + r.network->description(),
                    "FID is only FID with the Inception network.");
  }
  if (request.wants("is")) {
    // A probe batch, as for the features: the network must classify these images.
    std::vector<int64_t> probe_shape = {2};
    probe_shape.insert(probe_shape.end(), image_shape.begin(), image_shape.end());
    r.classes = r.network->class_probabilities(torch::zeros(probe_shape, torch::kUInt8)).size(1);
  }
  if (request.wants("fid") || request.wants("fd"))
    r.statistics = reference_statistics(request, model, *r.network, communicator);
  if (request.wants("pr"))
    load_real_features(request, model, r, communicator);
  return r;
}

std::vector<EvalResult> features_pass_results(TrainedModel& model, const SamplingSetting& setting,
                                              const diffusion::AnalyticTable* table,
                                              const Reference& reference,
                                              const EvalRequest& request, uint64_t seed,
                                              dist::Communicator& communicator,
                                              const SampleFiles& outputs) {
  const auto start = Clock::now();
  PassSums p = run_pass(model, setting, table, reference, request, seed, communicator,
                        !outputs.samples.empty());
  write_outputs(p, outputs, communicator);
  const std::string network = reference.network->description();
  const int64_t n = request.num_samples;
  std::vector<EvalResult> out;
  if (p.frechet) {
    p.frechet->reduce(communicator);
    const FeatureStatistics generated = statistics_of(*p.frechet, network, setting.name());
    // One seed: no spread; that is over --seed's seeds (Note [seeds and paired differences]).
    out.push_back(result_of(
        setting, reference.metric, frechet_distance(*reference.statistics, generated), std::nullopt,
        n, seconds_since(start), network + " vs " + reference.statistics->source, seed));
  }
  if (p.inception) {
    p.inception->reduce(communicator);
    const InceptionScore score = p.inception->score();
    if (communicator.rank() == 0)
      spdlog::info("{} is: {:.4g}, sd {:.2g} over {} splits (the spread published tables give)",
                   setting.name(), score.mean, score.split_sd, request.is_splits);
    out.push_back(result_of(setting, "is", score.mean, score.standard_error, n,
                            seconds_since(start),
                            network + ", " + std::to_string(request.is_splits) + " splits", seed));
  }
  if (request.wants("pr")) {
    const torch::Tensor generated = all_shares(torch::cat(p.features), n, communicator);
    const PrecisionRecall pr = precision_recall(
        reference.real_features, generated, kPrecisionRecallNeighbours, communicator, model.device);
    const std::string against = network + " vs " + reference.real_source +
                                ", k = " + std::to_string(kPrecisionRecallNeighbours);
    out.push_back(result_of(setting, "precision", pr.precision, std::nullopt, n,
                            seconds_since(start), against, seed));
    out.push_back(result_of(setting, "recall", pr.recall, std::nullopt, n, seconds_since(start),
                            against, seed));
  }
  return out;
}

}  // namespace ocm::eval
