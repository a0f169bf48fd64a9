#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "diffusion/likelihood.h"
#include "eval/features.h"
#include "eval/image_files.h"
#include "eval/plot.h"
#include "eval/statistics.h"

namespace ocm::eval {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string eta_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(seconds) / 60,
                static_cast<int>(seconds) % 60);
  return text;
}

bool wants(const EvalRequest& r, const std::string& metric) {
  return std::find(r.metrics.begin(), r.metrics.end(), metric) != r.metrics.end();
}

std::vector<SamplingSetting> settings_of(const EvalRequest& request, const TrainedModel& model) {
  for (const auto& metric : request.metrics) {
    if (metric != "fid" && metric != "fd" && metric != "nll")
      throw UserError("--metric " + metric, "is not a metric", "fid, fd or nll");
  }
  std::vector<SamplingSetting> out;
  for (const auto& sampler : request.samplers) {
    for (const auto& cov : request.covs) {
      for (const int64_t steps : request.steps) {
        SamplingSetting s;
        s.sampler = sampler;
        s.eta = sampler == "ddim" ? request.eta : 0.0;
        s.cov = cov;
        s.cov_scale = request.cov_scale;
        s.steps = steps;
        s.trajectory = request.trajectory;
        if (sampler == "ddim" && cov == "fixed-large") {
          spdlog::warn("skipping {}: fixed-large has no DDIM form", s.name());
          continue;
        }
        if (cov == "fixed-large" && request.cov_scale != 1.0) {
          spdlog::warn("skipping {}: fixed-large has no c_t to scale", s.name());
          continue;
        }
        check_setting(s, model);
        out.push_back(s);
      }
    }
  }
  if (out.empty()) {
    throw UserError("--sampler and --cov", "leave no setting to evaluate (see the warnings above)",
                    "at least one setting that can run");
  }
  return out;
}

// Features of the first `count` elements of a dataset split, shared over the ranks.
FeatureSums dataset_features(const data::Dataset& dataset, const std::string& split, int64_t count,
                             FeatureNetwork& network, dist::Communicator& communicator,
                             int64_t batch) {
  const std::vector<int64_t> mine = share_of(count, communicator.rank(), communicator.world_size());
  const auto& e = dataset.manifest().element_shape;
  FeatureSums sums(network.dim());
  for (size_t first = 0; first < mine.size(); first += static_cast<size_t>(batch)) {
    const std::vector<int64_t> indices(
        mine.begin() + static_cast<std::ptrdiff_t>(first),
        mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), first + batch)));
    torch::Tensor images =
        torch::empty({static_cast<int64_t>(indices.size()), e[0], e[1], e[2]}, torch::kUInt8);
    dataset.read(split, indices, images.data_ptr(), nullptr);
    sums.add(network.features(images));
  }
  sums.reduce(communicator);
  return sums;
}

void append_result(const std::string& path, const TrainedModel& model, const EvalResult& r) {
  std::ofstream out(path, std::ios::app);
  out << nlohmann::json{{"checkpoint", model.checkpoint_path},
                        {"step", model.step},
                        {"setting", r.setting},
                        {"sampler", r.sampler},
                        {"eta", r.eta},
                        {"cov_scale", r.cov_scale},
                        {"seed", r.seed},
                        {"cov", r.cov},
                        {"steps", r.steps},
                        {"metric", r.metric},
                        {"value", r.value},
                        {"n", r.n},
                        {"seconds", r.seconds},
                        {"features", r.features}}
             .dump()
      << "\n";
  if (!out)
    throw UserError(path, "could not be appended to", "a writable run directory");
}

// Every result recorded for `checkpoint` in results.jsonl, the latest per (setting, metric,
// seed, n): the reports cover earlier invocations on the same checkpoint too. Lines written before
// eta and seed were recorded count as seed 0; their eta is in the setting's name.
std::vector<EvalResult> results_of_checkpoint(const std::string& path,
                                              const std::string& checkpoint) {
  std::map<std::tuple<std::string, std::string, uint64_t, int64_t>, EvalResult> latest;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.at("checkpoint") != checkpoint)
        continue;
      EvalResult r{j.at("setting"),
                   j.at("sampler"),
                   j.at("cov"),
                   j.at("steps"),
                   j.at("metric"),
                   j.at("value"),
                   j.at("n"),
                   j.at("seconds"),
                   j.at("features"),
                   j.value("eta", 0.0),
                   j.value("cov_scale", 1.0),
                   j.value("seed", uint64_t{0})};
      latest[{r.setting, r.metric, r.seed, r.n}] = r;
    } catch (const std::exception&) {
      spdlog::warn("{}: skipping a line that is not a result: {}", path, line.substr(0, 80));
    }
  }
  std::vector<EvalResult> out;
  for (auto& [key, r] : latest)
    out.push_back(std::move(r));
  return out;
}

// The report's sampler column: the setting's name without its covariance and K, so that DDIM's
// eta and a non-linear trajectory stay apart ("ddim", "ddim0.5", "ddpm-quadratic").
std::string sampler_label(const EvalResult& r) {
  const std::string middle =
      "-" + r.cov + cov_scale_suffix(r.cov_scale) + "-K" + std::to_string(r.steps);
  const auto at = r.setting.find(middle);
  if (at == std::string::npos)
    return r.sampler;
  return r.setting.substr(0, at) + r.setting.substr(at + middle.size());
}

void write_reports(const std::string& dir, const TrainedModel& model,
                   const std::vector<EvalResult>& results) {
  std::ofstream md(files::join(dir, "results.md"));
  md << "# Evaluation of " << model.checkpoint_path << " (step " << model.step << ")\n\n";
  std::set<std::string> metrics;
  for (const auto& r : results)
    metrics.insert(r.metric);
  for (const auto& metric : metrics) {
    // One row per sampler, covariance, seed and sample count.
    using Row = std::tuple<std::string, std::string, uint64_t, int64_t>;
    std::set<int64_t> ks;
    std::map<Row, std::map<int64_t, const EvalResult*>> rows;
    for (const auto& r : results) {
      if (r.metric != metric)
        continue;
      ks.insert(r.steps);
      const std::string scale = cov_scale_suffix(r.cov_scale);
      rows[{sampler_label(r), r.cov + (scale.empty() ? "" : " " + scale), r.seed, r.n}][r.steps] =
          &r;
    }
    const EvalResult& any = *rows.begin()->second.begin()->second;
    md << "## " << (metric == "nll" ? "bits/dim (K-step bound)" : metric) << "\n\n";
    if (!any.features.empty())
      md << (metric == "nll" ? "Data: " : "Features: ") << any.features << ".\n\n";
    md << "| sampler | covariance | seed | n |";
    for (const int64_t k : ks)
      md << " K=" << k << " |";
    md << "\n|---|---|---|---|";
    for (size_t i = 0; i < ks.size(); ++i)
      md << "---|";
    md << "\n";
    std::vector<PlotSeries> series;
    // The plot's legend names the seed and n only where they tell lines apart.
    const Row& first = rows.begin()->first;
    const bool several_seeds = std::any_of(rows.begin(), rows.end(), [&](const auto& row) {
      return std::get<2>(row.first) != std::get<2>(first);
    });
    const bool several_counts = std::any_of(rows.begin(), rows.end(), [&](const auto& row) {
      return std::get<3>(row.first) != std::get<3>(first);
    });
    for (const auto& [row, by_k] : rows) {
      const auto& [sampler, cov, seed, n] = row;
      md << "| " << sampler << " | " << cov << " | " << seed << " | " << n << " |";
      PlotSeries line{sampler + " " + cov + (several_seeds ? " seed " + std::to_string(seed) : "") +
                          (several_counts ? " n " + std::to_string(n) : ""),
                      {}};
      for (const int64_t k : ks) {
        const auto found = by_k.find(k);
        if (found == by_k.end()) {
          md << " |";
          continue;
        }
        char value[32];
        std::snprintf(value, sizeof value, " %.4g |", found->second->value);
        md << value;
        line.points.emplace_back(static_cast<double>(k), found->second->value);
      }
      md << "\n";
      series.push_back(line);
    }
    if (std::any_of(rows.begin(), rows.end(),
                    [](const auto& row) { return std::get<0>(row.first).rfind("ddim", 0) == 0; }))
      md << "\n`ddimE` is DDIM with eta = E; `ddim` alone has eta = 0.\n";
    md << "\n![" << metric << " against K](" << metric << ".png)\n\n";
    write_line_plot(files::join(dir, metric + ".png"),
                    (metric == "nll" ? std::string("bits/dim") : metric) + " against K",
                    "sampling steps K", metric == "nll" ? "bits/dim" : metric, series);
  }
}

}  // namespace

HeldOutElements held_out_elements(const TrainedModel& model) {
  auto dataset = std::make_shared<const data::Dataset>(model.config.data.path);
  const std::string split = dataset->manifest().splits.count("test") ? "test" : "train";
  HeldOutElements held_out;
  held_out.description = model.config.data.path + " " + split;
  held_out.count = dataset->size(split);
  held_out.read = [dataset, split, images = model.images,
                   device = model.device](const std::vector<int64_t>& indices) {
    std::vector<int64_t> shape = {static_cast<int64_t>(indices.size())};
    const auto& e = dataset->manifest().element_shape;
    shape.insert(shape.end(), e.begin(), e.end());
    torch::Tensor raw = torch::empty(shape, images ? torch::kUInt8 : torch::kFloat32);
    dataset->read(split, indices, raw.data_ptr(), nullptr);
    return images ? data::images_to_float(raw).to(device) : raw.to(device);
  };
  return held_out;
}

BpdResult mean_bpd(diffusion::DenoisingModel& model, diffusion::CovarianceEstimator& estimator,
                   const diffusion::Schedule& schedule, const diffusion::LikelihoodOptions& options,
                   int64_t count,
                   const std::function<torch::Tensor(const std::vector<int64_t>&)>& read,
                   int64_t batch, uint64_t seed, dist::Communicator& communicator) {
  const std::vector<int64_t> mine = share_of(count, communicator.rank(), communicator.world_size());
  double sum = 0, sum_squares = 0;
  for (size_t first = 0; first < mine.size(); first += static_cast<size_t>(batch)) {
    const std::vector<int64_t> chunk(
        mine.begin() + static_cast<std::ptrdiff_t>(first),
        mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), first + batch)));
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
  const bool frechet = wants(request, "fid") || wants(request, "fd");
  if (frechet && request.features.empty())
    throw UserError("--features", "is missing", "a feature network for --metric fid/fd",
                    "Pass inception-2015-12-05.pt or a classifier of `ocm classifier train` "
                    "(docs/evaluation.md).");
  if (frechet && request.num_samples < 2)
    throw UserError("--num-samples " + std::to_string(request.num_samples), "is too small",
                    "at least 2 samples per setting for a covariance");
  if (frechet && !model.images)
    throw UserError("--metric fd", "needs image data", "nll for vector data");
  if (request.batch < 1)
    throw UserError("--batch", "is " + std::to_string(request.batch), "at least 1");
  if (frechet && request.num_samples < communicator.world_size())
    throw UserError("--num-samples " + std::to_string(request.num_samples),
                    "is fewer than the " + std::to_string(communicator.world_size()) + " ranks",
                    "at least one sample per rank");
  const std::vector<int64_t> image_shape =
      model.images ? std::vector<int64_t>{model.sample_shape[1], model.sample_shape[2],
                                          model.sample_shape[0]}
                   : model.sample_shape;

  std::unique_ptr<FeatureNetwork> network;
  FeatureStatistics reference;
  std::string metric_name;
  if (frechet) {
    network = load_feature_network(request.features, image_shape, model.device);
    metric_name = network->metric();
    if (wants(request, "fid") && metric_name != "fid") {
      throw UserError("--metric fid", "needs Inception features (2048-d, TorchScript)",
                      "--metric fd with " + network->description(),
                      "FID is only FID with the Inception network.");
    }
    if (!request.reference.empty()) {
      reference = load_statistics(request.reference);
      if (reference.mean.size(0) != network->dim())
        throw UserError(
            request.reference, "holds " + std::to_string(reference.mean.size(0)) + "-d statistics",
            std::to_string(network->dim()) + "-d ones like " + network->description() + " makes");
    } else {
      const data::Dataset dataset(model.config.data.path);
      const int64_t count = dataset.size(model.config.data.split);
      spdlog::info("reference statistics: {} elements of {} ({})", count, model.config.data.path,
                   model.config.data.split);
      reference = statistics_of(dataset_features(dataset, model.config.data.split, count, *network,
                                                 communicator, request.batch),
                                network->description(),
                                model.config.data.path + " " + model.config.data.split);
    }
  }

  // Every input has been checked: from here on the run directory is written to.
  const std::string dir = files::join(model.run_dir, "eval");
  if (communicator.rank() == 0) {
    const std::string error = files::create_directories(files::join(dir, "grids"));
    if (!error.empty())
      throw UserError(dir, "cannot be created (" + error + ")", "a writable run directory");
  }
  communicator.barrier();
  std::vector<EvalResult> results;
  const std::string results_path = files::join(dir, "results.jsonl");
  // Another seed's grids sit beside seed 0's rather than replacing them.
  const std::string seed_suffix = request.seed == 0 ? "" : "-seed" + std::to_string(request.seed);
  auto record = [&](const EvalResult& r) {
    results.push_back(r);
    if (communicator.rank() == 0) {
      append_result(results_path, model, r);
      spdlog::info("{} {}: {:.5g} (n = {}, {:.1f} s)", r.setting, r.metric, r.value, r.n,
                   r.seconds);
    }
  };
  std::map<std::string, diffusion::AnalyticTable> tables;
  auto table_for = [&](const SamplingSetting& s) -> const diffusion::AnalyticTable* {
    if (s.cov != "analytic")
      return nullptr;
    const std::string key = s.trajectory + std::to_string(s.steps);
    if (!tables.count(key))
      tables[key] = analytic_table(model, s, communicator, request.analytic_samples);
    return &tables[key];
  };

  if (frechet) {
    const std::vector<int64_t> mine =
        share_of(request.num_samples, communicator.rank(), communicator.world_size());
    for (const auto& setting : settings) {
      const auto start = Clock::now();
      const diffusion::AnalyticTable* table = table_for(setting);
      FeatureSums sums(network->dim());
      torch::Tensor grid;
      for (size_t first = 0; first < mine.size(); first += static_cast<size_t>(request.batch)) {
        const std::vector<int64_t> chunk(mine.begin() + static_cast<std::ptrdiff_t>(first),
                                         mine.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                            mine.size(), first + request.batch)));
        const torch::Tensor images =
            generate(model, setting, table, chunk, request.batch, request.seed);
        sums.add(network->features(images));
        if (!grid.defined())
          grid = images.narrow(0, 0, std::min<int64_t>(images.size(0), request.grid));
        if (communicator.rank() == 0) {
          const double done = static_cast<double>(first + chunk.size()) / mine.size();
          spdlog::info("{}: {}/{} samples on rank 0, ETA {}", setting.name(), first + chunk.size(),
                       mine.size(), eta_text(seconds_since(start) * (1 - done) / done));
        }
      }
      sums.reduce(communicator);
      if (communicator.rank() == 0 && grid.defined())
        write_grid(files::join(dir, "grids/" + setting.name() + seed_suffix + ".png"), grid);
      const FeatureStatistics generated =
          statistics_of(sums, network->description(), setting.name());
      record({setting.name(), setting.sampler, setting.cov, setting.steps, metric_name,
              frechet_distance(reference, generated), sums.count(), seconds_since(start),
              network->description() + " vs " + reference.source, setting.eta, setting.cov_scale,
              request.seed});
    }
  }

  if (wants(request, "nll")) {
    const HeldOutElements held_out = held_out_elements(model);
    const int64_t count =
        request.nll_samples > 0 ? std::min(request.nll_samples, held_out.count) : held_out.count;
    std::set<std::string> done;
    for (const auto& setting : settings) {
      const std::string key = setting.cov + std::to_string(setting.steps);
      if (done.count(key) || setting.cov == "ocm-mc")
        continue;
      done.insert(key);
      const auto start = Clock::now();
      diffusion::EstimatorOptions estimator_options;
      estimator_options.table = table_for(setting);
      estimator_options.c_scale = setting.cov_scale;
      auto estimator = diffusion::make_estimator(setting.cov, *model.schedule, estimator_options);
      diffusion::LikelihoodOptions options;
      options.steps = setting.steps;
      options.trajectory = setting.trajectory;
      options.decoder = model.images ? "discretized" : "gaussian";
      const BpdResult bpd = mean_bpd(*model.denoiser, *estimator, *model.schedule, options, count,
                                     held_out.read, request.batch, request.seed, communicator);
      SamplingSetting reported = setting;
      reported.sampler = "ddpm";
      reported.eta = 0;
      record({reported.name(), "ddpm", setting.cov, setting.steps, "nll", bpd.mean, count,
              seconds_since(start), held_out.description, 0.0, setting.cov_scale, request.seed});
    }
  }
  if (communicator.rank() == 0 && !results.empty()) {
    write_reports(dir, model, results_of_checkpoint(results_path, model.checkpoint_path));
    spdlog::info("results: {} (appended), {}/results.md, plots {}/<metric>.png, grids {}/grids/",
                 results_path, dir, dir, dir);
  }
  return results;
}

}  // namespace ocm::eval
