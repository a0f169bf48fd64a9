#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/layout.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "diffusion/likelihood.h"
#include "eval/batches.h"
#include "eval/exact_metrics.h"
#include "eval/features.h"
#include "eval/image_files.h"
#include "eval/mixture_truth.h"
#include "eval/statistics.h"

namespace ocm::eval {
namespace {

std::string eta_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(seconds) / 60,
                static_cast<int>(seconds) % 60);
  return text;
}

bool wants(const EvalRequest& r, const std::string& metric) {
  return std::find(r.metrics.begin(), r.metrics.end(), metric) != r.metrics.end();
}

bool wants_frechet(const EvalRequest& r) {
  return wants(r, "fid") || wants(r, "fd");
}

// The setting of one (sampler, covariance, K), or nothing (with a warning) when it cannot exist.
std::optional<SamplingSetting> setting_of(const EvalRequest& request, const std::string& sampler,
                                          const std::string& cov, int64_t steps) {
  SamplingSetting s;
  s.sampler = sampler;
  s.eta = sampler == "ddim" ? request.eta : 0.0;
  s.cov = cov;
  s.cov_scale = request.cov_scale;
  s.clip_pixel = request.clip_pixel;
  s.steps = steps;
  s.trajectory = request.trajectory;
  const bool step_variance = cov == "fixed-large" || cov == "learned";
  if (sampler == "ddim" && step_variance) {
    spdlog::warn("skipping {}: {} has no DDIM form", s.name(), cov);
    return std::nullopt;
  }
  if (step_variance && request.cov_scale != 1.0) {
    spdlog::warn("skipping {}: {} has no c_t to scale", s.name(), cov);
    return std::nullopt;
  }
  return s;
}

std::vector<SamplingSetting> settings_of(const EvalRequest& request, const TrainedModel& model) {
  for (const auto& metric : request.metrics) {
    if (metric != "fid" && metric != "fd" && metric != "nll" && metric != "mmd" &&
        metric != "h-error")
      throw UserError("--metric " + metric, "is not a metric", "fid, fd, nll, mmd or h-error");
  }
  std::vector<SamplingSetting> out;
  for (const auto& sampler : request.samplers) {
    for (const auto& cov : request.covs) {
      for (const int64_t steps : request.steps) {
        if (auto s = setting_of(request, sampler, cov, steps)) {
          check_setting(*s, model);
          out.push_back(*s);
        }
      }
    }
  }
  if (out.empty()) {
    throw UserError("--sampler and --cov", "leave no setting to evaluate (see the warnings above)",
                    "at least one setting that can run");
  }
  return out;
}

void check_request(const EvalRequest& request, const TrainedModel& model, int world) {
  const bool frechet = wants_frechet(request);
  if (frechet && request.features.empty())
    throw UserError("--features", "is missing", "a feature network for --metric fid/fd",
                    "Pass inception-2015-12-05.pt or a classifier of `ocm classifier train` "
                    "(docs/evaluation.md).");
  if (frechet && request.num_samples < 2)
    throw UserError("--num-samples " + std::to_string(request.num_samples), "is too small",
                    "at least 2 samples per setting for a covariance");
  if (frechet && !model.images)
    throw UserError("--metric fd", "needs image data", "nll for vector data");
  if ((wants(request, "mmd") || wants(request, "h-error")) && !model.truth)
    throw UserError("--metric mmd/h-error", "needs the true distribution of the data",
                    "a run on a dataset drawn from a known mixture (`ocm data prepare mixture`)");
  if (wants(request, "h-error") && !model.head)
    throw UserError("--metric h-error", model.checkpoint_path + " has no OCM head",
                    "a checkpoint of the OCM phase");
  if (wants(request, "mmd") && request.num_samples < 2)
    throw UserError("--num-samples " + std::to_string(request.num_samples), "is too small",
                    "at least 2 samples per setting for mmd");
  if (request.save_samples && !frechet)
    throw UserError("--save-samples",
                    "keeps the samples of fid/fd settings, and --metric asks for "
                    "neither",
                    "--metric fid or fd beside it");
  if (request.seeds.empty())
    throw UserError("--seed", "lists no seed", "one seed or more, e.g. --seed 0,1,2");
  if (request.batch < 1)
    throw UserError("--batch", "is " + std::to_string(request.batch), "at least 1");
  if (frechet && request.num_samples < world)
    throw UserError("--num-samples " + std::to_string(request.num_samples),
                    "is fewer than the " + std::to_string(world) + " ranks",
                    "at least one sample per rank");
}

// The feature network and the statistics generated samples are compared with.
struct Reference {
  std::unique_ptr<FeatureNetwork> network;
  FeatureStatistics statistics;
  std::string metric;  // fid or fd
};

Reference load_reference(const EvalRequest& request, const TrainedModel& model,
                         dist::Communicator& communicator) {
  Reference r;
  r.network = load_feature_network(
      request.features, checkpoints::element_shape_of({model.sample_shape, model.images}),
      model.device);
  r.metric = r.network->metric();
  if (wants(request, "fid") && r.metric != "fid") {
    throw UserError("--metric fid", "needs Inception features (2048-d, TorchScript)",
                    "--metric fd with " + r.network->description(),
                    "FID is only FID with the Inception network.");
  }
  if (!request.reference.empty()) {
    r.statistics = load_statistics(request.reference);
    if (r.statistics.mean.size(0) != r.network->dim())
      throw UserError(
          request.reference, "holds " + std::to_string(r.statistics.mean.size(0)) + "-d statistics",
          std::to_string(r.network->dim()) + "-d ones like " + r.network->description() + " makes");
    return r;
  }
  const data::Dataset dataset(model.config.data.path);
  const std::string& split = model.config.data.split;
  const int64_t count = dataset.size(split);
  spdlog::info("reference statistics: {} elements of {} ({})", count, model.config.data.path,
               split);
  r.statistics = statistics_of(
      dataset_feature_sums(dataset, split, count, *r.network, communicator, request.batch),
      r.network->description(), model.config.data.path + " " + split);
  return r;
}

// One analytic table per trajectory and K, estimated on first use.
class AnalyticTables {
 public:
  AnalyticTables(TrainedModel& model, dist::Communicator& communicator, int64_t samples)
      : model_(model), communicator_(communicator), samples_(samples) {}
  const diffusion::AnalyticTable* of(const SamplingSetting& s) {
    if (s.cov != "analytic")
      return nullptr;
    const std::string key = s.trajectory + std::to_string(s.steps);
    if (!tables_.count(key))
      tables_[key] = analytic_table(model_, s, communicator_, samples_);
    return &tables_[key];
  }

 private:
  TrainedModel& model_;
  dist::Communicator& communicator_;
  int64_t samples_;
  std::map<std::string, diffusion::AnalyticTable> tables_;
};

// Where one setting's grid, and with --save-samples its samples, go.
struct SampleFiles {
  std::string grid;
  std::string samples;  // "" unless --save-samples
};

// The Frechet distance of one setting's samples to the reference; rank 0 writes its files.
EvalResult frechet_result(TrainedModel& model, const SamplingSetting& setting,
                          AnalyticTables& tables, const Reference& reference,
                          const EvalRequest& request, uint64_t seed,
                          dist::Communicator& communicator, const SampleFiles& outputs) {
  const auto start = Clock::now();
  const diffusion::AnalyticTable* table = tables.of(setting);
  const std::vector<int64_t> mine =
      share_of(request.num_samples, communicator.rank(), communicator.world_size());
  FeatureSums sums(reference.network->dim());
  torch::Tensor grid;
  std::vector<torch::Tensor> kept;
  generate_batches(
      model, setting, table, mine, request.batch, seed,
      [&](const torch::Tensor& images, int64_t done) {
        sums.add(reference.network->features(images));
        if (!outputs.samples.empty())
          kept.push_back(images.cpu());
        if (!grid.defined())
          grid = images.narrow(0, 0, std::min<int64_t>(images.size(0), request.grid));
        if (communicator.rank() == 0) {
          const double fraction = static_cast<double>(done) / static_cast<double>(mine.size());
          spdlog::info("{}: {}/{} samples on rank 0, ETA {}", setting.name(), done, mine.size(),
                       eta_text(seconds_since(start) * (1 - fraction) / fraction));
        }
      });
  sums.reduce(communicator);
  if (communicator.rank() == 0 && grid.defined())
    write_grid(outputs.grid, grid);
  if (!outputs.samples.empty()) {
    const torch::Tensor all = gather_shares(torch::cat(kept));
    if (communicator.rank() == 0)
      write_samples(outputs.samples, all);
  }
  const FeatureStatistics generated =
      statistics_of(sums, reference.network->description(), setting.name());
  return {setting.name(),
          setting.sampler,
          setting.cov,
          setting.steps,
          reference.metric,
          frechet_distance(reference.statistics, generated),
          std::nullopt,  // one seed: the spread is over --seed's seeds (report.h)
          sums.count(),
          seconds_since(start),
          reference.network->description() + " vs " + reference.statistics.source,
          setting.eta,
          setting.cov_scale,
          seed};
}

// Bits/dim of the K-step bound with the setting's covariance; reported under ddpm, since the
// bound does not depend on the sampler.
EvalResult nll_result(TrainedModel& model, const SamplingSetting& setting, AnalyticTables& tables,
                      const HeldOutElements& held_out, const EvalRequest& request,
                      dist::Communicator& communicator) {
  const auto start = Clock::now();
  const int64_t count =
      request.nll_samples > 0 ? std::min(request.nll_samples, held_out.count) : held_out.count;
  auto estimator = estimator_of(setting, model, tables.of(setting));
  diffusion::LikelihoodOptions options;
  options.steps = setting.steps;
  options.trajectory = setting.trajectory;
  options.decoder = model.images ? "discretized" : "gaussian";
  options.clip_x0 = model.images && !request.nll_unclipped;
  const BpdResult bpd = mean_bpd(*model.denoiser, *estimator, *model.schedule, options, count,
                                 held_out.read, request.batch, request.seeds.front(), communicator);
  SamplingSetting reported = setting;
  reported.sampler = "ddpm";
  reported.eta = 0;
  return {reported.name(),      "ddpm", setting.cov,
          setting.steps,        "nll",  bpd.mean,
          bpd.standard_error,   count,  seconds_since(start),
          held_out.description, 0.0,    setting.cov_scale,
          request.seeds.front()};
}

// Creates <run>/eval/grids (and samples) on rank 0, once every input has been checked.
std::string prepare_eval_directory(const TrainedModel& model, bool save_samples,
                                   dist::Communicator& communicator) {
  const std::string dir = files::join(model.run_dir, "eval");
  if (communicator.rank() == 0) {
    for (const std::string& sub : save_samples ? std::vector<std::string>{"grids", "samples"}
                                               : std::vector<std::string>{"grids"}) {
      const std::string error = files::create_directories(files::join(dir, sub));
      if (!error.empty())
        throw UserError(dir, "cannot be created (" + error + ")", "a writable run directory");
    }
  }
  communicator.barrier();
  return dir;
}

}  // namespace

BpdResult mean_bpd(diffusion::DenoisingModel& model, diffusion::CovarianceEstimator& estimator,
                   const diffusion::Schedule& schedule, const diffusion::LikelihoodOptions& options,
                   int64_t count, const ElementReader& read, int64_t batch, uint64_t seed,
                   dist::Communicator& communicator) {
  const std::vector<int64_t> mine = share_of(count, communicator.rank(), communicator.world_size());
  double sum = 0, sum_squares = 0;
  for (const auto& chunk : batches_of(mine, batch)) {
    const torch::Tensor bpd =
        diffusion::negative_elbo_bpd(model, estimator, schedule, options, read(chunk), seed, chunk)
            .to(torch::kFloat64);
    sum += bpd.sum().item<double>();
    sum_squares += bpd.square().sum().item<double>();
  }
  torch::Tensor totals = torch::tensor({sum, sum_squares}, torch::kFloat64);
  communicator.sum_async(totals)->wait();
  const double n = static_cast<double>(count);
  const double mean = totals[0].item<double>() / n;
  const double variance = std::max(0.0, totals[1].item<double>() / n - mean * mean);
  return {mean, std::sqrt(variance * n / std::max(1.0, n - 1) / n), count};
}

std::vector<EvalResult> evaluate(TrainedModel& model, const EvalRequest& request,
                                 dist::Communicator& communicator) {
  const std::vector<SamplingSetting> settings = settings_of(request, model);
  check_request(request, model, communicator.world_size());
  Reference reference;
  if (wants_frechet(request))
    reference = load_reference(request, model, communicator);
  // Every input has been checked: from here on the run directory is written to.
  const std::string dir = prepare_eval_directory(model, request.save_samples, communicator);
  const std::string results_path = files::join(dir, "results.jsonl");
  std::vector<EvalResult> results;
  auto record = [&](const EvalResult& r) {
    results.push_back(r);
    if (communicator.rank() != 0)
      return;
    append_result(results_path, model, r);
    const std::string error = r.standard_error ? fmt::format(" ± {:.2g}", *r.standard_error) : "";
    spdlog::info("{} {}: {:.5g}{} (n = {}, {:.1f} s)", r.setting, r.metric, r.value, error, r.n,
                 r.seconds);
  };
  AnalyticTables tables(model, communicator, request.analytic_samples);
  // One kernel for every setting and seed (Note [block MMD]).
  const double bandwidth = wants(request, "mmd") ? mmd_bandwidth(*model.truth) : 0.0;
  for (const uint64_t seed : request.seeds) {
    // Another seed's grids and samples sit beside seed 0's rather than replacing them.
    const std::string seed_suffix = seed == 0 ? "" : "-seed" + std::to_string(seed);
    for (const auto& s : wants_frechet(request) ? settings : std::vector<SamplingSetting>{}) {
      const std::string stem = s.name() + seed_suffix;
      const SampleFiles outputs{
          files::join(dir, "grids/" + stem + ".png"),
          request.save_samples ? files::join(dir, "samples/" + stem + ".npz") : ""};
      record(frechet_result(model, s, tables, reference, request, seed, communicator, outputs));
    }
    for (const auto& s : wants(request, "mmd") ? settings : std::vector<SamplingSetting>{})
      record(mmd_result(model, s, tables.of(s), request.num_samples, request.batch, seed, bandwidth,
                        communicator));
  }
  if (wants(request, "nll") || wants(request, "h-error")) {
    std::set<std::string> done;  // these depend on the covariance and K, not the sampler
    std::optional<HeldOutElements> held_out;
    for (const auto& s : settings) {
      if (!done.insert(s.cov + std::to_string(s.steps)).second)
        continue;
      if (wants(request, "nll") && s.cov != "ocm-mc") {
        if (!held_out)
          held_out = held_out_elements(model);
        record(nll_result(model, s, tables, *held_out, request, communicator));
      }
      if (wants(request, "h-error") && s.cov == "ocm")
        record(h_error_result(model, s, request.num_samples, request.seeds.front(), communicator));
    }
  }
  if (communicator.rank() == 0 && !results.empty()) {
    write_reports(dir, model, results_of_checkpoint(results_path, model.checkpoint_path),
                  request.baseline);
    spdlog::info("results: {} (appended), {}/results.md, plots {}/<metric>.png, grids {}/grids/",
                 results_path, dir, dir, dir);
  }
  return results;
}

}  // namespace ocm::eval
