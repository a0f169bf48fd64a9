// What an evaluation records: results.jsonl, and results.md with one plot per metric.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eval/trained_model.h"

namespace ocm::eval {

// Ends the setting name of a bound with x0_hat left unclipped (--nll-unclipped), another quantity
// than the default bound: the name keeps it in rows of its own.
inline constexpr const char* kUnclippedBoundSuffix = "-x0-unclipped";

// One line of <run>/eval/results.jsonl.
struct EvalResult {
  std::string setting;  // SamplingSetting::name()
  std::string sampler;
  std::string cov;
  int64_t steps = 0;
  std::string metric;  // fid, fd, nll (bits/dim), mmd or h-error
  double value = 0;
  // The standard error of `value`: for nll, over the n test images; for mmd and h-error, over
  // blocks. Absent where one run does not measure it (fid / fd: their spread is over seeds, see
  // Note [seeds and paired differences]) and in lines written before it was recorded.
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

// Rewrites <dir>/results.md: a summary (for each metric, sampler and K, the best covariance and
// whether its margin is beyond its uncertainty; also written alone to <dir>/summary.md), then a
// table per metric (one row per sampler, covariance and n, a column per K, each value the mean
// over seeds with its standard error) and each covariance's difference to `baseline` (or to
// fixed-small where the baseline was not evaluated); and <dir>/<metric>.png (the same as lines
// against K, with error bars of one standard error).
void write_reports(const std::string& dir, const TrainedModel& model,
                   const std::vector<EvalResult>& results,
                   const std::string& baseline = "fixed-small");

}  // namespace ocm::eval
