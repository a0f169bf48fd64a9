// What an evaluation records: results.jsonl, and results.md with one plot per metric.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eval/trained_model.h"

namespace ocm::eval {

// One line of <run>/eval/results.jsonl.
struct EvalResult {
  std::string setting;  // SamplingSetting::name()
  std::string sampler;
  std::string cov;
  int64_t steps = 0;
  std::string metric;  // fid, fd or nll (bits/dim)
  double value = 0;
  // The standard error of `value`: for nll, over the n test images. Absent where it was not
  // measured (fid / fd, and results.jsonl lines written before it was recorded).
  std::optional<double> standard_error;
  int64_t n = 0;
  double seconds = 0;
  std::string features;  // the feature network or reference, for fid / fd
  double eta = 0;        // DDIM's eta (0 for DDPM)
  double cov_scale = 1;  // --cov-scale
  uint64_t seed = 0;     // --seed of the samples and the bound's noise
};

// Appends `result` of `model` as one JSON line to `path`.
void append_result(const std::string& path, const TrainedModel& model, const EvalResult& result);

// Every result recorded for `checkpoint` in results.jsonl, the latest per (setting, metric, seed,
// n), so that the reports cover earlier invocations on the same checkpoint too. Lines written
// before eta and seed were recorded count as seed 0; their eta is in the setting's name.
std::vector<EvalResult> results_of_checkpoint(const std::string& path,
                                              const std::string& checkpoint);

// Rewrites <dir>/results.md (a table per metric: one row per sampler, covariance, seed and n, a
// column per K, each value with its standard error where measured) and <dir>/<metric>.png (the
// same as lines against K, with error bars of one standard error).
void write_reports(const std::string& dir, const TrainedModel& model,
                   const std::vector<EvalResult>& results);

}  // namespace ocm::eval
