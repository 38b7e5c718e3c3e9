#include "triad/fairness/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "triad/core/error.h"

namespace triad::fairness {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

std::optional<double> find_metric(const std::vector<std::pair<std::string, double>>& flat,
                                  const std::string& name) {
  for (const auto& [n, v] : flat) {
    if (n == name) return v;
  }
  return std::nullopt;
}

std::string p_text(double p) {
  if (std::isnan(p)) return "n/a";
  if (p < 1e-4) return fmt::format("{:.1e}", p);
  return fmt::format("{:.4f}", p);
}

}  // namespace

RunComparison compare_runs(const std::vector<FairnessReport>& baseline,
                           const std::vector<FairnessReport>& mitigated, double confidence) {
  if (baseline.size() != mitigated.size())
    fail_usage("--baseline has {} runs and --mitigated {}: runs are paired by position, give as many of each",
               baseline.size(), mitigated.size());
  if (baseline.size() < 2) fail_usage("a paired test needs at least 2 runs of each, got {}", baseline.size());
  RunComparison c;
  c.confidence = confidence;
  std::vector<std::vector<std::pair<std::string, double>>> flat_b, flat_m;
  std::vector<std::string> names;
  for (size_t i = 0; i < baseline.size(); ++i) {
    c.baseline_sources.push_back(baseline[i].source);
    c.mitigated_sources.push_back(mitigated[i].source);
    flat_b.push_back(flat_metrics(baseline[i]));
    flat_m.push_back(flat_metrics(mitigated[i]));
    for (const auto* flat : {&flat_b.back(), &flat_m.back()}) {
      for (const auto& [name, value] : *flat) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      }
    }
  }
  for (const std::string& name : names) {
    MetricComparison& m = c.metrics.emplace_back();
    m.name = name;
    for (size_t i = 0; i < baseline.size(); ++i) {
      const std::optional<double> b = find_metric(flat_b[i], name), x = find_metric(flat_m[i], name);
      if (b && x) m.baseline.push_back(*b), m.mitigated.push_back(*x);
    }
    if (m.baseline.size() >= 2) {
      m.tested = true;
      m.test = paired_t_test(m.baseline, m.mitigated, confidence);
      if (m.test.equal_differences && m.test.mean_difference != 0) {
        c.notes.push_back(
            fmt::format("{}: all {} differences equal ({:+.4f}): sd 0, p undefined (not evidence: "
                        "the metric may move in steps)",
                        name, m.test.n, m.test.mean_difference));
      }
    }
    if (m.baseline.size() < baseline.size()) {
      c.notes.push_back(fmt::format("{}: defined in both runs of {} of the {} pairs{}", name,
                                    m.baseline.size(), baseline.size(),
                                    m.tested ? "; the test uses those" : "; not tested"));
    }
  }
  return c;
}

nlohmann::json to_json(const RunComparison& c) {
  nlohmann::json j;
  j["format"] = "triad-fairness-comparison";
  j["version"] = 1;
  j["baseline"] = c.baseline_sources;
  j["mitigated"] = c.mitigated_sources;
  j["confidence"] = c.confidence;
  j["test"] = "paired t-test, two-sided; difference = mitigated - baseline";
  j["metrics"] = nlohmann::json::array();
  for (const MetricComparison& m : c.metrics) {
    nlohmann::json row = {
        {"name", m.name}, {"pairs", m.baseline.size()}, {"baseline", m.baseline}, {"mitigated", m.mitigated}};
    if (m.tested) {
      const PairedTest& t = m.test;
      row["baseline_mean"] = t.baseline_mean;
      row["mitigated_mean"] = t.mitigated_mean;
      row["difference"] = t.mean_difference;
      row["ci"] = {number_or_null(t.ci_lo), number_or_null(t.ci_hi)};
      row["t"] = number_or_null(t.t);  // null when infinite (all differences equal) or NaN
      row["df"] = t.df;
      row["p"] = number_or_null(t.p);  // null when undefined (all differences equal)
      row["equal_differences"] = t.equal_differences;
    }
    j["metrics"].push_back(row);
  }
  j["notes"] = c.notes;
  return j;
}

std::string format_comparison(const RunComparison& c) {
  std::string out = fmt::format(
      "{} paired runs (baseline vs mitigated, paired by position); difference = mitigated - baseline, "
      "{:g}% interval from Student's t; p: two-sided paired t-test\n\n",
      c.baseline_sources.size(), 100 * c.confidence);
  size_t width = 6;
  for (const MetricComparison& m : c.metrics) width = std::max(width, m.name.size());
  out += fmt::format("  {:<{}}  {:>9}  {:>9}  {:>9}  {:<22}  {:>8}\n", "metric", width, "baseline",
                     "mitigated", "diff", "interval", "p");
  for (const MetricComparison& m : c.metrics) {
    if (!m.tested) {
      out += fmt::format("  {:<{}}  (defined in {} pair(s): not tested)\n", m.name, width, m.baseline.size());
      continue;
    }
    const PairedTest& t = m.test;
    out += fmt::format("  {:<{}}  {:>9.4f}  {:>9.4f}  {:>+9.4f}  {:<22}  {:>8}\n", m.name, width,
                       t.baseline_mean, t.mitigated_mean, t.mean_difference,
                       fmt::format("[{:+.4f}, {:+.4f}]", t.ci_lo, t.ci_hi), p_text(t.p));
  }
  if (!c.notes.empty()) {
    out += "\nnotes:\n";
    for (const std::string& n : c.notes) out += "  - " + n + "\n";
  }
  return out;
}

}  // namespace triad::fairness
