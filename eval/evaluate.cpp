#include "eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "diffusion/likelihood.h"
#include "eval/batches.h"
#include "eval/exact_metrics.h"
#include "eval/features_pass.h"
#include "eval/mixture_truth.h"

namespace ocm::eval {
namespace {

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
  const std::set<std::string> known = {"fid", "fd", "is", "pr", "nll", "mmd", "h-error"};
  for (const auto& metric : request.metrics) {
    if (!known.count(metric))
      throw UserError("--metric " + metric, "is not a metric",
                      "fid, fd, is, pr, nll, mmd or h-error");
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
  const bool features = request.wants_features();
  if (features && request.features.empty())
    throw UserError("--features", "is missing", "a feature network for --metric fid/fd/is/pr",
                    "Pass inception-2015-12-05.pt or a classifier of `ocm classifier train` "
                    "(docs/evaluation.md).");
  if (features && request.num_samples < 2)
    throw UserError("--num-samples " + std::to_string(request.num_samples), "is too small",
                    "at least 2 samples per setting for a covariance");
  if (features && !model.images)
    throw UserError("--metric fd/fid/is/pr", "needs image data", "nll for vector data");
  if (request.wants("is") && (request.is_splits < 1 || request.is_splits > request.num_samples))
    throw UserError("--is-splits " + std::to_string(request.is_splits), "is out of range",
                    "between 1 and --num-samples (" + std::to_string(request.num_samples) + ")");
  if (request.wants("pr") && request.num_samples <= kPrecisionRecallNeighbours)
    throw UserError("--num-samples " + std::to_string(request.num_samples),
                    "is too small for precision and recall",
                    "more than k = " + std::to_string(kPrecisionRecallNeighbours) + " samples");
  if ((request.wants("mmd") || request.wants("h-error")) && !model.truth)
    throw UserError("--metric mmd/h-error", "needs the true distribution of the data",
                    "a run on a dataset drawn from a known mixture (`ocm data prepare mixture`)");
  if (request.wants("h-error") && !model.head)
    throw UserError("--metric h-error", model.checkpoint_path + " has no OCM head",
                    "a checkpoint of the OCM phase");
  if (request.wants("mmd") && request.num_samples < 2)
    throw UserError("--num-samples " + std::to_string(request.num_samples), "is too small",
                    "at least 2 samples per setting for mmd");
  if (request.save_samples && !features)
    throw UserError("--save-samples",
                    "keeps the samples the feature network sees, and --metric asks for no "
                    "metric of it",
                    "--metric fid, fd, is or pr beside it");
  if (request.seeds.empty())
    throw UserError("--seed", "lists no seed", "one seed or more, e.g. --seed 0,1,2");
  if (request.batch < 1)
    throw UserError("--batch", "is " + std::to_string(request.batch), "at least 1");
  if (features && request.num_samples < world)
    throw UserError("--num-samples " + std::to_string(request.num_samples),
                    "is fewer than the " + std::to_string(world) + " ranks",
                    "at least one sample per rank");
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
  EvalResult result{reported.name(),      "ddpm", setting.cov,
                    setting.steps,        "nll",  bpd.mean,
                    bpd.standard_error,   count,  seconds_since(start),
                    held_out.description, 0.0,    setting.cov_scale,
                    request.seeds.front()};
  if (model.images && request.nll_unclipped)
    result.setting += kUnclippedBoundSuffix;
  return result;
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

bool EvalRequest::wants(const std::string& metric) const {
  return std::find(metrics.begin(), metrics.end(), metric) != metrics.end();
}

bool EvalRequest::wants_features() const {
  return wants("fid") || wants("fd") || wants("is") || wants("pr");
}

std::vector<EvalResult> evaluate(TrainedModel& model, const EvalRequest& request,
                                 dist::Communicator& communicator) {
  const std::vector<SamplingSetting> settings = settings_of(request, model);
  check_request(request, model, communicator.world_size());
  Reference reference;
  if (request.wants_features())
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
  const double bandwidth = request.wants("mmd") ? mmd_bandwidth(*model.truth) : 0.0;
  for (const uint64_t seed : request.seeds) {
    // Another seed's grids and samples sit beside seed 0's rather than replacing them.
    const std::string seed_suffix = seed == 0 ? "" : "-seed" + std::to_string(seed);
    for (const auto& s : request.wants_features() ? settings : std::vector<SamplingSetting>{}) {
      const std::string stem = s.name() + seed_suffix;
      const SampleFiles outputs{
          files::join(dir, "grids/" + stem + ".png"),
          request.save_samples ? files::join(dir, "samples/" + stem + ".npz") : ""};
      for (const EvalResult& r : features_pass_results(model, s, tables.of(s), reference, request,
                                                       seed, communicator, outputs))
        record(r);
    }
    for (const auto& s : request.wants("mmd") ? settings : std::vector<SamplingSetting>{})
      record(mmd_result(model, s, tables.of(s), request.num_samples, request.batch, seed, bandwidth,
                        communicator));
  }
  if (request.wants("nll") || request.wants("h-error")) {
    std::set<std::string> done;  // these depend on the covariance and K, not the sampler
    std::optional<HeldOutElements> held_out;
    for (const auto& s : settings) {
      if (!done.insert(s.cov + std::to_string(s.steps)).second)
        continue;
      if (request.wants("nll") && s.cov != "ocm-mc") {
        if (!held_out)
          held_out = held_out_elements(model);
        record(nll_result(model, s, tables, *held_out, request, communicator));
      }
      if (request.wants("h-error") && s.cov == "ocm")
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
