#include "eval/generate.h"

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "checkpoints/layout.h"
#include "common/error.h"
#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"

namespace ocm::eval {

std::string cov_scale_suffix(double scale) {
  if (scale == 1.0)
    return "";
  std::ostringstream out;
  out << "x" << scale;
  return out.str();
}

std::string SamplingSetting::name() const {
  std::ostringstream out;
  out << sampler;
  if (sampler == "ddim" && eta != 0)
    out << eta;
  out << "-" << cov << cov_scale_suffix(cov_scale) << "-K" << steps;
  if (trajectory != "linear")
    out << "-" << trajectory;
  if (clip_pixel != 1.0)
    out << "-clip" << clip_pixel;
  return out.str();
}

void check_setting(const SamplingSetting& setting, const TrainedModel& model) {
  const int64_t n = model.schedule->num_timesteps();
  if (setting.steps < 2 || setting.steps > n) {
    throw UserError("--steps " + std::to_string(setting.steps), "is out of range",
                    "between 2 and N = " + std::to_string(n) +
                        " (K network evaluations, the last one at t = 1)");
  }
  if (setting.sampler != "ddpm" && setting.sampler != "ddim")
    throw UserError("--sampler " + setting.sampler, "is not a sampler", "ddpm or ddim");
  if (setting.eta < 0 || setting.eta > 1)
    throw UserError("--eta", "is " + std::to_string(setting.eta), "a number in [0, 1]");
  const auto& names = diffusion::estimator_names();
  if (std::find(names.begin(), names.end(), setting.cov) == names.end()) {
    throw UserError("--cov " + setting.cov, "is not a covariance",
                    "fixed-small, fixed-large, analytic, ocm, ocm-mc, learned or exact");
  }
  if (setting.cov == "exact" && !model.truth) {
    throw UserError("--cov exact",
                    "the true distribution of " + model.config.data.path + " is not known",
                    "a dataset drawn from a known mixture (`ocm data prepare mixture`)");
  }
  if (setting.cov == "learned" && !model.config.model.learn_sigma) {
    throw UserError("--cov learned", model.checkpoint_path + " has no learned variance",
                    "a learned-sigma network (model.learn_sigma: true), imported with ocm import",
                    "Use fixed-small, fixed-large, analytic, ocm or ocm-mc.");
  }
  if ((setting.cov == "ocm") && !model.head) {
    throw UserError("--cov ocm",
                    model.checkpoint_path + " has no OCM head (phase " + model.phase + ", step " +
                        std::to_string(model.step) + ")",
                    "a checkpoint of the OCM phase",
                    "Train the OCM phase first (rerun `ocm train` with the run's config), or use "
                    "fixed-small, fixed-large, analytic or ocm-mc.");
  }
  if ((setting.cov == "fixed-large" || setting.cov == "learned") && setting.sampler == "ddim")
    throw UserError("--cov " + setting.cov, "has no DDIM form", "ddpm with " + setting.cov);
  diffusion::check_c_scale(setting.cov_scale);
  if (!std::isfinite(setting.clip_pixel) || setting.clip_pixel < 0)
    throw UserError("--clip-pixel", "is " + std::to_string(setting.clip_pixel),
                    "a finite number >= 0 (0: no clip)");
}

torch::Tensor to_uint8_images(const torch::Tensor& x) {
  return ((x.to(torch::kFloat32) + 1) * 127.5)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .permute({0, 2, 3, 1})
      .contiguous()
      .cpu();
}

std::unique_ptr<diffusion::CovarianceEstimator> estimator_of(
    const SamplingSetting& setting, const TrainedModel& model,
    const diffusion::AnalyticTable* table) {
  diffusion::EstimatorOptions options;
  options.probes = setting.probes;
  options.table = table;
  options.c_scale = setting.cov_scale;
  options.truth = model.truth.get();
  options.trajectory =
      diffusion::trajectory(setting.trajectory, setting.steps, model.schedule->num_timesteps());
  return diffusion::make_estimator(setting.cov, *model.schedule, options);
}

void generate_batches(TrainedModel& model, const SamplingSetting& setting,
                      const diffusion::AnalyticTable* table, const std::vector<int64_t>& indices,
                      int64_t batch, uint64_t seed, const SampleBatchCallback& on_batch) {
  check_setting(setting, model);
  auto estimator = estimator_of(setting, model, table);
  diffusion::SamplerOptions options;
  options.kind = setting.sampler;
  options.eta = setting.eta;
  options.trajectory = setting.trajectory;
  options.steps = setting.steps;
  options.clip_x0 = model.images;
  options.sigma_clip = model.images ? setting.clip_pixel : 0.0;
  int64_t done = 0;
  for (const auto& chunk : batches_of(indices, batch)) {
    const torch::Tensor x =
        diffusion::sample(*model.denoiser, *estimator, *model.schedule, options, model.sample_shape,
                          seed, chunk, torch::TensorOptions().device(model.device));
    done += static_cast<int64_t>(chunk.size());
    on_batch(model.images ? to_uint8_images(x) : x.to(torch::kFloat32).cpu(), done);
  }
}

torch::Tensor generate(TrainedModel& model, const SamplingSetting& setting,
                       const diffusion::AnalyticTable* table, const std::vector<int64_t>& indices,
                       int64_t batch, uint64_t seed, const std::function<void(int64_t)>& progress) {
  std::vector<torch::Tensor> parts;
  generate_batches(model, setting, table, indices, batch, seed,
                   [&](const torch::Tensor& samples, int64_t done) {
                     parts.push_back(samples);
                     if (progress)
                       progress(done);
                   });
  if (!parts.empty())
    return torch::cat(parts);
  std::vector<int64_t> shape = {0};
  const std::vector<int64_t> element =
      checkpoints::element_shape_of({model.sample_shape, model.images});
  shape.insert(shape.end(), element.begin(), element.end());
  return torch::empty(shape, model.images ? torch::kUInt8 : torch::kFloat32);
}

namespace {

// The table kept at `path`, when it is readable and covers every step of `times`.
std::optional<diffusion::AnalyticTable> read_analytic_table(const std::string& path,
                                                            const std::vector<int64_t>& times) {
  if (!files::exists(path))
    return std::nullopt;
  try {
    std::ifstream in(path);
    const auto json = nlohmann::json::parse(in);
    diffusion::AnalyticTable table;
    for (const auto& [t, gamma] : json.at("gamma").items())
      table.gamma[std::stoll(t)] = gamma.get<double>();
    for (const int64_t t : times) {
      if (t > 0 && table.gamma.count(t) == 0)
        throw std::runtime_error("missing t");
    }
    return table;
  } catch (const std::exception&) {
    spdlog::warn("{} is unreadable or incomplete; estimating the table again", path);
    return std::nullopt;
  }
}

// Each rank estimates over its share of the first `available` training elements (noise keyed by
// the share's first index, so the table's last digits depend on the world size that made it; it
// is made once per run and trajectory and then read back); the sums are added across ranks.
diffusion::AnalyticTable estimate_over_ranks(TrainedModel& model, const std::vector<int64_t>& times,
                                             const data::Dataset& dataset, int64_t available,
                                             dist::Communicator& communicator) {
  const std::vector<int64_t> mine =
      share_of(available, communicator.rank(), communicator.world_size());
  const std::vector<std::vector<int64_t>> batches = batches_of(mine, 128);
  auto data = [&](int64_t b) {
    return data::read_model_input(dataset, model.config.data.split, batches[b], model.device);
  };
  const diffusion::AnalyticTable local = diffusion::estimate_analytic_table(
      *model.denoiser, *model.schedule, times, data, static_cast<int64_t>(batches.size()),
      derive_seed({static_cast<uint64_t>(model.config.run.seed),
                   static_cast<uint64_t>(mine.empty() ? 0 : mine.front())}));
  // estimate_analytic_table averages; turn means back into sums to add them across ranks.
  double elements = static_cast<double>(mine.size());
  for (const int64_t d : model.sample_shape)
    elements *= static_cast<double>(d);
  std::vector<int64_t> keys;
  std::vector<double> sums;
  for (const int64_t t : times) {
    if (t == 0)
      continue;
    keys.push_back(t);
    sums.push_back(local.gamma.count(t) ? local.gamma.at(t) * elements : 0.0);
  }
  sums.push_back(elements);
  torch::Tensor reduced = torch::tensor(sums, torch::kFloat64);
  communicator.sum_async(reduced)->wait();
  const double total = reduced[static_cast<int64_t>(keys.size())].item<double>();
  diffusion::AnalyticTable table;
  for (size_t i = 0; i < keys.size(); ++i)
    table.gamma[keys[i]] = reduced[static_cast<int64_t>(i)].item<double>() / total;
  return table;
}

}  // namespace

diffusion::AnalyticTable analytic_table(TrainedModel& model, const SamplingSetting& setting,
                                        dist::Communicator& communicator, int64_t samples) {
  const std::string dir = files::join(model.run_dir, "eval/analytic");
  const std::string path =
      files::join(dir, setting.trajectory + "-K" + std::to_string(setting.steps) + "-step" +
                           std::to_string(model.step) + ".json");
  const std::vector<int64_t> times =
      diffusion::trajectory(setting.trajectory, setting.steps, model.schedule->num_timesteps());
  if (auto kept = read_analytic_table(path, times))
    return *kept;
  const data::Dataset dataset(model.config.data.path);
  const int64_t available = std::min(samples, dataset.size(model.config.data.split));
  const diffusion::AnalyticTable table =
      estimate_over_ranks(model, times, dataset, available, communicator);
  if (communicator.rank() == 0) {
    const std::string error = files::create_directories(dir);
    if (!error.empty())
      throw UserError(dir, "cannot be created (" + error + ")", "a writable run directory");
    nlohmann::json gamma;
    for (const auto& [t, value] : table.gamma)
      gamma[std::to_string(t)] = value;
    files::write_text_atomically(path, nlohmann::json{{"trajectory", setting.trajectory},
                                                      {"steps", setting.steps},
                                                      {"checkpoint", model.checkpoint_path},
                                                      {"samples", available},
                                                      {"gamma", gamma}}
                                               .dump(2) +
                                           "\n");
    spdlog::info("analytic covariance table for {} from {} training elements: {}", setting.name(),
                 available, path);
  }
  return table;
}

}  // namespace ocm::eval
