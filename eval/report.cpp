#include "eval/report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "eval/generate.h"
#include "eval/plot.h"

namespace ocm::eval {
namespace {

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

}  // namespace

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
                        {"standard_error", r.standard_error ? nlohmann::json(*r.standard_error)
                                                            : nlohmann::json(nullptr)},
                        {"n", r.n},
                        {"seconds", r.seconds},
                        {"features", r.features}}
             .dump()
      << "\n";
  if (!out)
    throw UserError(path, "could not be appended to", "a writable run directory");
}

std::vector<EvalResult> results_of_checkpoint(const std::string& path,
                                              const std::string& checkpoint) {
  std::map<std::tuple<std::string, std::string, uint64_t, int64_t>, EvalResult> latest;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.at("checkpoint") != checkpoint)
        continue;
      const auto error = j.find("standard_error");
      EvalResult r{j.at("setting"),
                   j.at("sampler"),
                   j.at("cov"),
                   j.at("steps"),
                   j.at("metric"),
                   j.at("value"),
                   error == j.end() || error->is_null()
                       ? std::nullopt
                       : std::optional<double>(error->get<double>()),
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

namespace {

// One table row per sampler, covariance (with its c_t scale), seed and sample count.
using RowKey = std::tuple<std::string, std::string, uint64_t, int64_t>;

struct MetricTable {
  std::set<int64_t> ks;
  std::map<RowKey, std::map<int64_t, const EvalResult*>> rows;
};

MetricTable table_of(const std::string& metric, const std::vector<EvalResult>& results) {
  MetricTable table;
  for (const auto& r : results) {
    if (r.metric != metric)
      continue;
    table.ks.insert(r.steps);
    const std::string scale = cov_scale_suffix(r.cov_scale);
    table.rows[{sampler_label(r), r.cov + (scale.empty() ? "" : " " + scale), r.seed, r.n}]
              [r.steps] = &r;
  }
  return table;
}

// "5.123 ± 0.021": the value and, where measured, its standard error.
std::string value_text(const EvalResult& r) {
  char text[64];
  if (r.standard_error)
    std::snprintf(text, sizeof text, "%.4g ± %.2g", r.value, *r.standard_error);
  else
    std::snprintf(text, sizeof text, "%.4g", r.value);
  return text;
}

void write_table(std::ostream& md, const MetricTable& table) {
  md << "| sampler | covariance | seed | n |";
  for (const int64_t k : table.ks)
    md << " K=" << k << " |";
  md << "\n|---|---|---|---|";
  for (size_t i = 0; i < table.ks.size(); ++i)
    md << "---|";
  md << "\n";
  for (const auto& [row, by_k] : table.rows) {
    const auto& [sampler, cov, seed, n] = row;
    md << "| " << sampler << " | " << cov << " | " << seed << " | " << n << " |";
    for (const int64_t k : table.ks) {
      const auto found = by_k.find(k);
      md << " " << (found == by_k.end() ? "" : value_text(*found->second)) << " |";
    }
    md << "\n";
  }
}

// The plot's lines; the legend names the seed and n only where they tell lines apart.
std::vector<PlotSeries> series_of(const MetricTable& table) {
  const RowKey& first = table.rows.begin()->first;
  bool several_seeds = false, several_counts = false;
  for (const auto& [row, by_k] : table.rows) {
    several_seeds = several_seeds || std::get<2>(row) != std::get<2>(first);
    several_counts = several_counts || std::get<3>(row) != std::get<3>(first);
  }
  std::vector<PlotSeries> series;
  for (const auto& [row, by_k] : table.rows) {
    const auto& [sampler, cov, seed, n] = row;
    PlotSeries line{sampler + " " + cov + (several_seeds ? " seed " + std::to_string(seed) : "") +
                        (several_counts ? " n " + std::to_string(n) : ""),
                    {}};
    const bool all_have_errors = std::all_of(by_k.begin(), by_k.end(), [](const auto& entry) {
      return entry.second->standard_error.has_value();
    });
    for (const auto& [k, result] : by_k) {
      line.points.emplace_back(static_cast<double>(k), result->value);
      if (all_have_errors)
        line.errors.push_back(*result->standard_error);
    }
    series.push_back(line);
  }
  return series;
}

void write_section(std::ostream& md, const std::string& metric, const MetricTable& table) {
  const EvalResult& any = *table.rows.begin()->second.begin()->second;
  md << "## " << (metric == "nll" ? "bits/dim (K-step bound)" : metric) << "\n\n";
  if (!any.features.empty())
    md << (metric == "nll" ? "Data: " : "Features: ") << any.features << ".\n\n";
  write_table(md, table);
  const bool any_error = std::any_of(table.rows.begin(), table.rows.end(), [](const auto& row) {
    return std::any_of(row.second.begin(), row.second.end(),
                       [](const auto& cell) { return cell.second->standard_error.has_value(); });
  });
  if (any_error) {
    md << "\n± is one standard error" << (metric == "nll" ? " over the n test images" : "")
       << "; the plot's bars are the same.\n";
  }
  if (std::any_of(table.rows.begin(), table.rows.end(),
                  [](const auto& row) { return std::get<0>(row.first).rfind("ddim", 0) == 0; }))
    md << "\n`ddimE` is DDIM with eta = E; `ddim` alone has eta = 0.\n";
  md << "\n![" << metric << " against K](" << metric << ".png)\n\n";
}

}  // namespace

void write_reports(const std::string& dir, const TrainedModel& model,
                   const std::vector<EvalResult>& results) {
  std::set<std::string> metrics;
  for (const auto& r : results)
    metrics.insert(r.metric);
  std::ostringstream md;
  md << "# Evaluation of " << model.checkpoint_path << " (step " << model.step << ")\n\n";
  std::map<std::string, MetricTable> tables;
  for (const auto& metric : metrics) {
    tables[metric] = table_of(metric, results);
    write_section(md, metric, tables[metric]);
  }
  // The markdown first: a plot that cannot be drawn does not cost the table.
  files::write_text_atomically(files::join(dir, "results.md"), md.str());
  for (const auto& [metric, table] : tables) {
    write_line_plot(files::join(dir, metric + ".png"),
                    (metric == "nll" ? std::string("bits/dim") : metric) + " against K",
                    "sampling steps K", metric == "nll" ? "bits/dim" : metric, series_of(table));
  }
}

}  // namespace ocm::eval
