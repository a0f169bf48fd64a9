#include "eval/report.h"

#include <algorithm>
#include <cmath>
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

// Note [seeds and paired differences]
// A table row is one sampler, covariance (with its c_t scale) and sample count; a cell holds its
// results for every seed. With two seeds or more a cell reports the mean over seeds and the
// standard error of that mean (sd / sqrt(seeds)); with one, the result's own standard error
// where it has one (nll: over test images; mmd: over blocks). Within a seed every covariance's
// sample i starts from the same noise and takes the same step noise, so a difference between
// two covariances is computed seed by seed and its error is that of the paired differences,
// far smaller than the values' spread. With one seed the difference's error is
// sqrt(se_a^2 + se_b^2), which ignores the pairing and so overstates it. A difference counts as
// beyond its uncertainty when it exceeds twice its standard error.
using RowKey = std::tuple<std::string, std::string, int64_t>;  // sampler, covariance, n
using Cell = std::map<uint64_t, const EvalResult*>;            // by seed

struct MetricTable {
  std::set<int64_t> ks;
  std::map<RowKey, std::map<int64_t, Cell>> rows;
};

struct Estimate {
  double value = 0;
  std::optional<double> error;
  size_t seeds = 0;
};

Estimate mean_over_seeds(const std::vector<double>& values) {
  Estimate e;
  e.seeds = values.size();
  for (const double v : values)
    e.value += v / static_cast<double>(values.size());
  if (values.size() >= 2) {
    double squares = 0;
    for (const double v : values)
      squares += (v - e.value) * (v - e.value);
    e.error = std::sqrt(squares / static_cast<double>(values.size() - 1) /
                        static_cast<double>(values.size()));
  }
  return e;
}

Estimate estimate_of(const Cell& cell) {
  if (cell.size() == 1) {
    const EvalResult& r = *cell.begin()->second;
    return {r.value, r.standard_error, 1};
  }
  std::vector<double> values;
  for (const auto& [seed, r] : cell)
    values.push_back(r->value);
  return mean_over_seeds(values);
}

// a - b, paired over their common seeds (Note [seeds and paired differences]).
Estimate difference(const Cell& a, const Cell& b) {
  std::vector<double> paired;
  for (const auto& [seed, r] : a) {
    if (const auto found = b.find(seed); found != b.end())
      paired.push_back(r->value - found->second->value);
  }
  if (paired.size() >= 2)
    return mean_over_seeds(paired);
  const Estimate ea = estimate_of(a), eb = estimate_of(b);
  Estimate d{ea.value - eb.value, std::nullopt, 1};
  if (ea.error && eb.error)
    d.error = std::sqrt(*ea.error * *ea.error + *eb.error * *eb.error);
  return d;
}

// The Inception Score, precision and recall grow with quality; every other metric shrinks.
bool higher_is_better(const std::string& metric) {
  return metric == "is" || metric == "precision" || metric == "recall";
}

bool beyond_uncertainty(const Estimate& d) {
  return d.error && std::abs(d.value) > 2 * *d.error;
}

MetricTable table_of(const std::string& metric, const std::vector<EvalResult>& results) {
  MetricTable table;
  for (const auto& r : results) {
    if (r.metric != metric)
      continue;
    table.ks.insert(r.steps);
    const std::string scale = cov_scale_suffix(r.cov_scale);
    table.rows[{sampler_label(r), r.cov + (scale.empty() ? "" : " " + scale), r.n}][r.steps]
              [r.seed] = &r;
  }
  return table;
}

// "5.123 ± 0.021": the value and, where measured, its standard error.
std::string estimate_text(const Estimate& e) {
  char text[64];
  if (e.error)
    std::snprintf(text, sizeof text, "%.4g ± %.2g", e.value, *e.error);
  else
    std::snprintf(text, sizeof text, "%.4g", e.value);
  return text;
}

std::string seeds_text(const std::map<int64_t, Cell>& by_k) {
  std::set<uint64_t> seeds;
  for (const auto& [k, cell] : by_k)
    for (const auto& [seed, r] : cell)
      seeds.insert(seed);
  std::string out;
  for (const uint64_t seed : seeds)
    out += (out.empty() ? "" : ",") + std::to_string(seed);
  return out;
}

void write_table_header(std::ostream& md, const std::string& columns, size_t fixed,
                        const std::set<int64_t>& ks) {
  md << "| " << columns << " |";
  for (const int64_t k : ks)
    md << " K=" << k << " |";
  md << "\n|";
  for (size_t i = 0; i < fixed + ks.size(); ++i)
    md << "---|";
  md << "\n";
}

void write_table(std::ostream& md, const MetricTable& table) {
  write_table_header(md, "sampler | covariance | seeds | n", 4, table.ks);
  for (const auto& [row, by_k] : table.rows) {
    const auto& [sampler, cov, n] = row;
    md << "| " << sampler << " | " << cov << " | " << seeds_text(by_k) << " | " << n << " |";
    for (const int64_t k : table.ks) {
      const auto found = by_k.find(k);
      md << " " << (found == by_k.end() ? "" : estimate_text(estimate_of(found->second))) << " |";
    }
    md << "\n";
  }
}

// The baseline of the differences: `preferred` where the table has it, else fixed-small, else
// the first covariance.
std::string baseline_of(const MetricTable& table, const std::string& preferred) {
  for (const std::string& wanted : {preferred, std::string("fixed-small")}) {
    for (const auto& [row, by_k] : table.rows)
      if (std::get<1>(row) == wanted)
        return wanted;
  }
  return std::get<1>(table.rows.begin()->first);
}

const std::map<int64_t, Cell>* row_of(const MetricTable& table, const std::string& sampler,
                                      const std::string& cov, int64_t n) {
  const auto found = table.rows.find({sampler, cov, n});
  return found == table.rows.end() ? nullptr : &found->second;
}

void write_differences(std::ostream& md, const MetricTable& table, const std::string& preferred) {
  const std::string baseline = baseline_of(table, preferred);
  std::ostringstream rows;
  for (const auto& [row, by_k] : table.rows) {
    const auto& [sampler, cov, n] = row;
    const auto* base = row_of(table, sampler, baseline, n);
    if (cov == baseline || base == nullptr)
      continue;
    rows << "| " << sampler << " | " << cov << " |";
    for (const int64_t k : table.ks) {
      const auto mine = by_k.find(k), theirs = base->find(k);
      if (mine == by_k.end() || theirs == base->end()) {
        rows << " |";
        continue;
      }
      const Estimate d = difference(mine->second, theirs->second);
      rows << " " << (d.value >= 0 ? "+" : "") << estimate_text(d)
           << (beyond_uncertainty(d) ? " *" : "") << " |";
    }
    rows << "\n";
  }
  if (rows.str().empty())
    return;
  md << "\nDifference to " << baseline << " (paired by seed where there are two or more; `*` "
     << "marks a difference beyond twice its standard error):\n\n";
  write_table_header(md, "sampler | covariance", 2, table.ks);
  md << rows.str();
}

// The plot's lines, one per row, with one standard error as bars where every point has one.
std::vector<PlotSeries> series_of(const MetricTable& table) {
  const int64_t first_n = std::get<2>(table.rows.begin()->first);
  const bool several_counts = std::any_of(table.rows.begin(), table.rows.end(), [&](const auto& r) {
    return std::get<2>(r.first) != first_n;
  });
  std::vector<PlotSeries> series;
  for (const auto& [row, by_k] : table.rows) {
    const auto& [sampler, cov, n] = row;
    PlotSeries line{sampler + " " + cov + (several_counts ? " n " + std::to_string(n) : ""), {}};
    std::vector<Estimate> estimates;
    for (const auto& [k, cell] : by_k) {
      estimates.push_back(estimate_of(cell));
      line.points.emplace_back(static_cast<double>(k), estimates.back().value);
    }
    if (std::all_of(estimates.begin(), estimates.end(), [](const Estimate& e) { return e.error; }))
      for (const Estimate& e : estimates)
        line.errors.push_back(*e.error);
    series.push_back(line);
  }
  return series;
}

std::string metric_title(const std::string& metric) {
  if (metric == "nll")
    return "bits/dim (K-step bound)";
  if (metric == "mmd")
    return "MMD^2 against the true distribution";
  if (metric == "h-error")
    return "h-error: the OCM head against the exact h*";
  if (metric == "is")
    return "Inception Score";
  if (metric == "precision" || metric == "recall")
    return metric + " (k = 3 nearest neighbours)";
  return metric;
}

void write_section(std::ostream& md, const std::string& metric, const MetricTable& table,
                   const std::string& baseline) {
  const EvalResult& any = *table.rows.begin()->second.begin()->second.begin()->second;
  md << "## " << metric_title(metric) << "\n\n";
  if (!any.features.empty())
    md << (metric == "nll" ? "Data: " : "Measured with: ") << any.features << ".\n\n";
  write_table(md, table);
  md << "\n± is one standard error: over seeds where a row has two or more, else "
     << (metric == "nll"       ? "over the n test images"
         : metric == "mmd"     ? "over blocks of 250 samples (Note [block MMD])"
         : metric == "h-error" ? "over blocks of 250 points"
         : metric == "is"      ? "of the mean over the splits (Note [Inception Score])"
                               : "not measured (one seed; pass --seed 0,1,2 for a spread)")
     << ". The plot's bars are the same.\n";
  if (metric != "h-error")
    write_differences(md, table, baseline);
  if (std::any_of(table.rows.begin(), table.rows.end(),
                  [](const auto& row) { return std::get<0>(row.first).rfind("ddim", 0) == 0; }))
    md << "\n`ddimE` is DDIM with eta = E; `ddim` alone has eta = 0.\n";
  if (std::any_of(table.rows.begin(), table.rows.end(), [](const auto& row) {
        return std::get<0>(row.first).find(kUnclippedBoundSuffix) != std::string::npos;
      }))
    md << "\n`" << kUnclippedBoundSuffix
       << "` rows are the bound with x0_hat left unclipped (`--nll-unclipped`).\n";
  md << "\n![" << metric << " against K](" << metric << ".png)\n\n";
}

// For each metric, sampler and K: the best covariance (lowest value, or highest where higher is
// better), its margin over the runner-up and whether that margin is beyond its uncertainty.
std::string summary_of(const std::map<std::string, MetricTable>& tables) {
  std::ostringstream out;
  for (const auto& [metric, table] : tables) {
    if (metric == "h-error") {
      for (const auto& [row, by_k] : table.rows)
        for (const auto& [k, cell] : by_k)
          out << "- h-error, K=" << k << ": the " << std::get<1>(row)
              << " head's relative RMS error against the exact h* is "
              << estimate_text(estimate_of(cell)) << "\n";
      continue;
    }
    std::map<std::pair<std::string, int64_t>, std::vector<std::pair<Estimate, const Cell*>>>
        groups;  // (sampler, K) -> each covariance's estimate
    std::map<const Cell*, std::string> cov_of;
    for (const auto& [row, by_k] : table.rows) {
      for (const auto& [k, cell] : by_k) {
        groups[{std::get<0>(row), k}].emplace_back(estimate_of(cell), &cell);
        cov_of[&cell] = std::get<1>(row);
      }
    }
    const bool higher = higher_is_better(metric);
    for (auto& [group, entries] : groups) {
      std::sort(entries.begin(), entries.end(), [higher](const auto& a, const auto& b) {
        return higher ? a.first.value > b.first.value : a.first.value < b.first.value;
      });
      const auto& [best, best_cell] = entries.front();
      out << "- " << metric << ", " << group.first << ", K=" << group.second << ": "
          << cov_of[best_cell] << " is best (" << estimate_text(best) << ")";
      if (entries.size() > 1) {
        const Estimate margin = higher ? difference(*best_cell, *entries[1].second)
                                       : difference(*entries[1].second, *best_cell);
        out << ", " << estimate_text(margin) << (higher ? " above " : " below ")
            << cov_of[entries[1].second] << ": "
            << (beyond_uncertainty(margin) ? "beyond its uncertainty"
                : margin.error             ? "within its uncertainty"
                                           : "no uncertainty measured");
      }
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace

void write_reports(const std::string& dir, const TrainedModel& model,
                   const std::vector<EvalResult>& results, const std::string& baseline) {
  std::set<std::string> metrics;
  for (const auto& r : results)
    metrics.insert(r.metric);
  std::ostringstream md;
  md << "# Evaluation of " << model.checkpoint_path << " (step " << model.step << ")\n\n";
  std::map<std::string, MetricTable> tables;
  for (const auto& metric : metrics)
    tables[metric] = table_of(metric, results);
  const std::string summary = summary_of(tables);
  md << "## Summary\n\nHigher is better for is, precision and recall, lower for every other "
     << "metric; the margin is to the runner-up (Note [seeds and paired differences]).\n\n"
     << summary << "\n";
  for (const auto& [metric, table] : tables)
    write_section(md, metric, table, baseline);
  // The markdown first: a plot that cannot be drawn does not cost the table.
  files::write_text_atomically(files::join(dir, "results.md"), md.str());
  files::write_text_atomically(files::join(dir, "summary.md"), summary);
  for (const auto& [metric, table] : tables) {
    write_line_plot(files::join(dir, metric + ".png"), metric_title(metric) + " against K",
                    "sampling steps K", metric == "nll" ? "bits/dim" : metric, series_of(table));
  }
}

}  // namespace ocm::eval
