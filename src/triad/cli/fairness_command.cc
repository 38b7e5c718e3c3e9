// `triad fairness`: the bias metrics of a predictions file, or mitigated vs baseline over seeds
// (docs/fairness.md, "Metrics").

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/parallel.h"
#include "triad/fairness/compare.h"
#include "triad/fairness/predictions.h"
#include "triad/fairness/report.h"

namespace triad::cli {

namespace {

constexpr const char* kFairnessFooter =
    R"(What the metrics mean (AUC: the chance a positive example scores above a negative one, ties 1/2):
  subgroup AUC      AUC among the examples that mention the group: can the model rank within it?
  BPSN AUC          the group's negatives against the other examples' positives; low: the group's
                    innocent mentions score as high as others' toxic ones (false positives)
  BNSP AUC          the group's positives against the others' negatives; low: false negatives
  final bias        Jigsaw's: 0.25 overall AUC + 0.25 each power mean (p = -5) of the three above
  subgroup AUC gap  per attribute, max - min subgroup AUC over its groups (the paper's Table 5)
  DPD               demographic parity difference: gap in the rate of score >= threshold
  EOD               equal opportunity difference: gap in the true-positive rate
  equalized odds    max of the TPR gap and the false-positive-rate gap
  ECE               expected calibration error: mean |fraction positive - mean score| over score bins
Gaps are max - min over the attribute's groups (any number of them). A group with one class only has no
subgroup AUC: it is shown as n/a and left out of the means and gaps. Intervals: percentile bootstrap over
examples. With --baseline/--mitigated: per headline metric the means, the difference (mitigated -
baseline) with its interval and the paired t-test's p over runs paired by position. See docs/fairness.md.)";

struct FairnessFlags {
  std::string predictions, out, baseline, mitigated;
  bool json = false;
  fairness::MetricOptions options;
  int threads = default_threads();
};

fairness::FairnessReport report_of(const std::string& path, const fairness::MetricOptions& options) {
  fairness::Predictions p = fairness::read_predictions(path);
  fairness::FairnessReport r = fairness::fairness_report(p.scores, p.labels, p.subgroups, options);
  r.source = path;
  return r;
}

// The report of each file of a comma-separated list.
std::vector<fairness::FairnessReport> reports_of(const std::string& flag, const std::string& list,
                                                 const fairness::MetricOptions& options) {
  std::vector<fairness::FairnessReport> reports;
  for (const std::string& path : split_list(flag, list)) reports.push_back(report_of(path, options));
  return reports;
}

}  // namespace

Runner add_fairness_command(CLI::App& root) {
  auto f = std::make_shared<FairnessFlags>();
  CLI::App* cmd = root.add_subcommand(
      "fairness",
      "Bias metrics of a classifier's predictions over identity groups (subgroup/BPSN/BNSP AUC, the "
      "final bias metric, AUC gaps, parity, equal opportunity, equalized odds, calibration), with "
      "bootstrap intervals; or mitigated vs baseline runs with a paired t-test.");
  cmd->footer(kFairnessFooter);
  add_config_option(*cmd);
  cmd->add_option("predictions", f->predictions,
                  "Predictions JSONL (as `triad predict` writes: id, label, score, identities)")
      ->type_name("PREDICTIONS.jsonl");
  cmd->add_option("--out", f->out, "Also write the report as JSON to this file")->type_name("FILE");
  cmd->add_flag("--json", f->json, "Print the JSON report instead of the table");
  cmd->add_option("--threshold", f->options.threshold,
                  "Score at or above which an example is predicted positive (parity, TPR, FPR)")
      ->type_name("T");
  cmd->add_option("--bootstrap", f->options.bootstrap, "Bootstrap resamples for the intervals (0: none)")
      ->type_name("N")
      ->check(non_negative());
  cmd->add_option("--seed", f->options.seed, "Seed of the bootstrap resampling")->type_name("S");
  cmd->add_option("--confidence", f->options.confidence, "Level of the intervals")->type_name("C");
  cmd->add_option("--ece-bins", f->options.ece_bins, "Equal-width bins of the calibration error")
      ->type_name("B")
      ->check(positive());
  cmd->add_option("--baseline", f->baseline,
                  "Comma-separated predictions of baseline runs (one per seed); with --mitigated")
      ->type_name("FILES");
  cmd->add_option("--mitigated", f->mitigated,
                  "Comma-separated predictions of mitigated runs, paired with --baseline by position")
      ->type_name("FILES");
  cmd->add_option("--threads", f->threads, "Threads (the bootstrap)")->check(positive());
  return [f]() {
    check_threads(f->threads);
    fairness::check_metric_options(f->options);
    set_threads(f->threads);
    const bool comparing = !f->baseline.empty() || !f->mitigated.empty();
    std::string json_text, table;
    if (comparing) {
      if (!f->predictions.empty()) fail_usage("give either PREDICTIONS or --baseline/--mitigated, not both");
      if (f->baseline.empty() || f->mitigated.empty())
        fail_usage("--baseline and --mitigated go together: give the runs of each");
      fairness::MetricOptions options = f->options;
      options.bootstrap = 0;  // the interval over seeds comes from the t distribution
      const fairness::RunComparison c =
          fairness::compare_runs(reports_of("--baseline", f->baseline, options),
                                 reports_of("--mitigated", f->mitigated, options), options.confidence);
      json_text = fairness::to_json(c).dump(2);
      table = fairness::format_comparison(c);
    } else {
      if (f->predictions.empty())
        fail_usage("give a predictions file (PREDICTIONS.jsonl), or --baseline and --mitigated");
      const fairness::FairnessReport r = report_of(f->predictions, f->options);
      json_text = fairness::to_json(r).dump(2);
      table = fairness::format_table(r);
    }
    fmt::print("{}", f->json ? json_text + "\n" : table);
    if (!f->out.empty()) write_file_atomic(f->out, json_text + "\n");
    return 0;
  };
}

}  // namespace triad::cli
