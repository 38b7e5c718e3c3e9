#include "triad/fairness/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "triad/core/format.h"
#include "triad/fairness/statistics.h"

namespace triad::fairness {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

nlohmann::json estimate_json(const Estimate& e) {
  nlohmann::json j = {{"value", number_or_null(e.value)}, {"ci", nullptr}, {"resamples", e.resamples}};
  if (std::isfinite(e.lo) && std::isfinite(e.hi)) j["ci"] = {e.lo, e.hi};
  return j;
}

// "0.912 [0.899, 0.925]", "0.912" without an interval, "n/a" when undefined.
std::string shown(const Estimate& e) {
  if (!e.defined()) return "n/a";
  if (std::isnan(e.lo)) return fmt::format("{:.3f}", e.value);
  return fmt::format("{:.3f} [{:.3f}, {:.3f}]", e.value, e.lo, e.hi);
}

// What a group's undefined metrics come from.
std::string group_note(const GroupReport& g, int64_t positives, int64_t negatives) {
  const GroupCounts& c = g.counts;
  if (c.members == 0) return "no member: every metric undefined, left out of the means and gaps";
  std::vector<std::string> undefined;
  if (!g.subgroup_auc.defined()) undefined.push_back("subgroup AUC");
  if (!g.bpsn_auc.defined()) undefined.push_back("BPSN AUC");
  if (!g.bnsp_auc.defined()) undefined.push_back("BNSP AUC");
  if (!g.tpr.defined()) undefined.push_back("TPR");
  if (!g.fpr.defined()) undefined.push_back("FPR");
  if (!g.ece.defined()) undefined.push_back("ECE");
  if (undefined.empty()) return "";
  std::string why;
  if (c.positives + c.negatives == 0) {
    why = fmt::format("no labelled member ({} unlabelled)", c.unlabelled);
  } else if (c.positives == 0 || c.negatives == 0) {
    why = fmt::format("one class only ({} positive, {} negative)", c.positives, c.negatives);
  } else {
    why = fmt::format("the background has {} positive and {} negative", positives - c.positives,
                      negatives - c.negatives);
  }
  return fmt::format("{}: {} undefined, left out of the means and gaps", why, fmt::join(undefined, ", "));
}

template <class... Args>
void add_line(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  out += fmt::format(format, std::forward<Args>(args)...);
  out += '\n';
}

}  // namespace

FairnessReport fairness_report(std::span<const double> scores, std::span<const int8_t> labels,
                               const std::vector<Subgroup>& subgroups, const MetricOptions& options) {
  const MetricEngine engine(scores, labels, subgroups, options);
  const std::vector<double> values = engine.evaluate();
  const int B = options.bootstrap;
  const std::vector<double> boot = B > 0 ? engine.bootstrap(B, options.seed) : std::vector<double>();
  const size_t width = engine.slots();
  int few_resamples = 0;
  auto estimate = [&](size_t slot) {
    Estimate e;
    e.value = values[slot];
    if (B == 0 || !e.defined()) return e;
    std::vector<double> column(B);
    for (int r = 0; r < B; ++r) column[r] = boot[r * width + slot];
    const Interval interval = percentile_interval(std::move(column), options.confidence);
    e.lo = interval.lo, e.hi = interval.hi, e.resamples = interval.resamples;
    few_resamples += e.resamples < 0.9 * B;
    return e;
  };

  FairnessReport r;
  r.options = options;
  r.examples = static_cast<int64_t>(engine.examples());
  r.labelled = engine.labelled();
  r.positives = engine.positives();
  r.negatives = r.labelled - r.positives;
  r.overall_auc = estimate(kOverallAuc);
  r.overall_ece = estimate(kOverallEce);
  r.power_mean_subgroup_auc = estimate(kPowerMeanSubgroupAuc);
  r.power_mean_bpsn_auc = estimate(kPowerMeanBpsnAuc);
  r.power_mean_bnsp_auc = estimate(kPowerMeanBnspAuc);
  r.final_bias = estimate(kFinalBias);
  r.ece_max = estimate(kEceMax);
  std::vector<std::string> left_out;
  for (size_t g = 0; g < subgroups.size(); ++g) {
    GroupReport& gr = r.groups.emplace_back();
    gr.attribute = subgroups[g].attribute;
    gr.name = subgroups[g].name;
    gr.counts = engine.counts(g);
    gr.subgroup_auc = estimate(engine.group_slot(g, kSubgroupAuc));
    gr.bpsn_auc = estimate(engine.group_slot(g, kBpsnAuc));
    gr.bnsp_auc = estimate(engine.group_slot(g, kBnspAuc));
    gr.positive_rate = estimate(engine.group_slot(g, kPositiveRate));
    gr.tpr = estimate(engine.group_slot(g, kTpr));
    gr.fpr = estimate(engine.group_slot(g, kFpr));
    gr.ece = estimate(engine.group_slot(g, kEce));
    gr.note = group_note(gr, r.positives, r.negatives);
    if (!gr.subgroup_auc.defined()) left_out.push_back(gr.attribute + "/" + gr.name);
  }
  for (size_t a = 0; a < engine.attributes().size(); ++a) {
    AttributeReport& ar = r.attributes.emplace_back();
    ar.attribute = engine.attributes()[a];
    ar.groups = engine.attribute_groups()[a];
    for (size_t g : ar.groups) ar.auc_groups += r.groups[g].subgroup_auc.defined();
    ar.subgroup_auc_gap = estimate(engine.attribute_slot(a, kSubgroupAucGap));
    ar.dpd = estimate(engine.attribute_slot(a, kDpd));
    ar.eod = estimate(engine.attribute_slot(a, kEod));
    ar.fpr_gap = estimate(engine.attribute_slot(a, kFprGap));
    ar.equalized_odds = estimate(engine.attribute_slot(a, kEqualizedOdds));
    ar.bpsn_auc_gap = estimate(engine.attribute_slot(a, kBpsnAucGap));
    ar.bnsp_auc_gap = estimate(engine.attribute_slot(a, kBnspAucGap));
  }

  if (r.labelled == 0) {
    r.notes.push_back(
        "no example has a label: only the positive rates and the demographic parity difference can be "
        "computed");
  } else if (r.labelled < r.examples) {
    r.notes.push_back(fmt::format(
        "{} of {} examples have no label: the positive rates and demographic parity use all of them, every "
        "other metric the {} labelled ones",
        r.examples - r.labelled, r.examples, r.labelled));
  }
  if (!left_out.empty()) {
    r.notes.push_back(fmt::format(
        "{} subgroup(s) without a subgroup AUC (one class only, or empty), left out of its power mean and "
        "gaps: {}",
        left_out.size(), some_of(left_out)));
  }
  if (few_resamples > 0) {
    r.notes.push_back(fmt::format(
        "{} interval(s) rest on fewer than 90% of the {} resamples: in the others a small group lost a "
        "class; see \"resamples\" in the JSON",
        few_resamples, B));
  }
  return r;
}

nlohmann::json to_json(const FairnessReport& r) {
  nlohmann::json j;
  j["format"] = "triad-fairness-report";
  j["version"] = 1;
  if (!r.source.empty()) j["source"] = r.source;
  j["examples"] = r.examples;
  j["labelled"] = r.labelled;
  j["positives"] = r.positives;
  j["negatives"] = r.negatives;
  j["options"] = {{"threshold", r.options.threshold},   {"ece_bins", r.options.ece_bins},
                  {"bootstrap", r.options.bootstrap},   {"seed", r.options.seed},
                  {"confidence", r.options.confidence}, {"power", r.options.power}};
  j["overall_auc"] = estimate_json(r.overall_auc);
  j["overall_ece"] = estimate_json(r.overall_ece);
  j["final_bias"] = estimate_json(r.final_bias);
  j["power_means"] = {{"subgroup_auc", estimate_json(r.power_mean_subgroup_auc)},
                      {"bpsn_auc", estimate_json(r.power_mean_bpsn_auc)},
                      {"bnsp_auc", estimate_json(r.power_mean_bnsp_auc)}};
  j["ece_max"] = estimate_json(r.ece_max);
  j["groups"] = nlohmann::json::array();
  for (const GroupReport& g : r.groups) {
    j["groups"].push_back({{"attribute", g.attribute},
                           {"group", g.name},
                           {"n", g.counts.members},
                           {"positives", g.counts.positives},
                           {"negatives", g.counts.negatives},
                           {"unlabelled", g.counts.unlabelled},
                           {"subgroup_auc", estimate_json(g.subgroup_auc)},
                           {"bpsn_auc", estimate_json(g.bpsn_auc)},
                           {"bnsp_auc", estimate_json(g.bnsp_auc)},
                           {"positive_rate", estimate_json(g.positive_rate)},
                           {"tpr", estimate_json(g.tpr)},
                           {"fpr", estimate_json(g.fpr)},
                           {"ece", estimate_json(g.ece)},
                           {"note", g.note}});
  }
  j["attributes"] = nlohmann::json::array();
  for (const AttributeReport& a : r.attributes) {
    nlohmann::json names = nlohmann::json::array();
    for (size_t g : a.groups) names.push_back(r.groups[g].name);
    j["attributes"].push_back({{"attribute", a.attribute},
                               {"groups", names},
                               {"auc_groups", a.auc_groups},
                               {"subgroup_auc_gap", estimate_json(a.subgroup_auc_gap)},
                               {"demographic_parity_difference", estimate_json(a.dpd)},
                               {"equal_opportunity_difference", estimate_json(a.eod)},
                               {"fpr_gap", estimate_json(a.fpr_gap)},
                               {"equalized_odds", estimate_json(a.equalized_odds)},
                               {"bpsn_auc_gap", estimate_json(a.bpsn_auc_gap)},
                               {"bnsp_auc_gap", estimate_json(a.bnsp_auc_gap)}});
  }
  nlohmann::json flat = nlohmann::json::object();
  for (const auto& [name, value] : flat_metrics(r)) flat[name] = value;
  j["metrics"] = flat;
  j["notes"] = r.notes;
  return j;
}

std::string format_table(const FairnessReport& r) {
  std::string out;
  add_line(out, "{}{} examples, {} labelled ({} positive, {} negative); positive at score >= {}",
           r.source.empty() ? "" : r.source + ": ", r.examples, r.labelled, r.positives, r.negatives,
           r.options.threshold);
  if (r.options.bootstrap > 0) {
    add_line(out, "[intervals: {:g}% percentile bootstrap, {} resamples of the examples, seed {}]",
             100 * r.options.confidence, r.options.bootstrap, r.options.seed);
  }
  add_line(out, "");
  add_line(out, "  overall AUC        {}", shown(r.overall_auc));
  add_line(out, "  overall ECE        {}   ({} bins)", shown(r.overall_ece), r.options.ece_bins);
  add_line(out, "  final bias metric  {}   (0.25 overall AUC + 0.25 each power mean below)",
           shown(r.final_bias));
  add_line(out, "  power means p={:g}  subgroup AUC {}   BPSN {}   BNSP {}", r.options.power,
           shown(r.power_mean_subgroup_auc), shown(r.power_mean_bpsn_auc), shown(r.power_mean_bnsp_auc));
  add_line(out, "  max group ECE      {}", shown(r.ece_max));
  for (const AttributeReport& a : r.attributes) {
    size_t name_width = 5;
    size_t col = 12;
    for (size_t g : a.groups) {
      const GroupReport& gr = r.groups[g];
      name_width = std::max(name_width, gr.name.size());
      for (const Estimate* e : {&gr.subgroup_auc, &gr.bpsn_auc, &gr.bnsp_auc, &gr.ece})
        col = std::max(col, shown(*e).size());
    }
    add_line(out, "");
    add_line(out, "{}", a.attribute);
    add_line(out, "  {:<{}} {:>7} {:>7}   {:<{}}   {:<{}}   {:<{}}   {}", "group", name_width, "n", "pos",
             "subgroup AUC", col, "BPSN AUC", col, "BNSP AUC", col, "ECE");
    for (size_t g : a.groups) {
      const GroupReport& gr = r.groups[g];
      add_line(out, "  {:<{}} {:>7} {:>7}   {:<{}}   {:<{}}   {:<{}}   {}", gr.name, name_width,
               gr.counts.members, gr.counts.positives, shown(gr.subgroup_auc), col, shown(gr.bpsn_auc), col,
               shown(gr.bnsp_auc), col, shown(gr.ece));
    }
    add_line(out, "  gaps (max - min over its groups):");
    add_line(out, "    subgroup AUC gap              {}   ({} of {} groups have an AUC)",
             shown(a.subgroup_auc_gap), a.auc_groups, a.groups.size());
    add_line(out, "    demographic parity difference {}", shown(a.dpd));
    add_line(out, "    equal opportunity (TPR gap)   {}", shown(a.eod));
    add_line(out, "    equalized odds (max TPR/FPR)  {}   (FPR gap {})", shown(a.equalized_odds),
             shown(a.fpr_gap));
    add_line(out, "    BPSN AUC gap                  {}", shown(a.bpsn_auc_gap));
    add_line(out, "    BNSP AUC gap                  {}", shown(a.bnsp_auc_gap));
  }
  std::vector<std::string> notes = r.notes;
  for (const GroupReport& g : r.groups) {
    if (!g.note.empty()) notes.push_back(fmt::format("{}/{}: {}", g.attribute, g.name, g.note));
  }
  if (!notes.empty()) {
    add_line(out, "");
    add_line(out, "notes:");
    for (const std::string& n : notes) add_line(out, "  - {}", n);
  }
  return out;
}

std::string metric_name_part(const std::string& attribute) {
  std::string s = attribute;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  return s;
}

std::vector<std::pair<std::string, double>> flat_metrics(const FairnessReport& r) {
  std::vector<std::pair<std::string, double>> out;
  auto add = [&](std::string name, const Estimate& e) {
    if (e.defined()) out.emplace_back(std::move(name), e.value);
  };
  add("fair_overall_auc", r.overall_auc);
  add("fair_final_bias", r.final_bias);
  add("fair_ece_max", r.ece_max);
  for (const AttributeReport& a : r.attributes) {
    const std::string part = metric_name_part(a.attribute);
    add("fair_subgroup_auc_gap_" + part, a.subgroup_auc_gap);
    add("fair_eod_" + part, a.eod);
    add("fair_dpd_" + part, a.dpd);
    add("fair_eq_odds_" + part, a.equalized_odds);
    add("fair_bpsn_gap_" + part, a.bpsn_auc_gap);
    add("fair_bnsp_gap_" + part, a.bnsp_auc_gap);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> flat_metric_names(
    const std::vector<std::string>& attributes) {
  std::vector<std::pair<std::string, std::string>> out = {
      {"fair_overall_auc", "ROC AUC over all labelled examples"},
      {"fair_final_bias", "Jigsaw final bias metric: 0.25 overall AUC + 0.25 each power mean (p = -5)"},
      {"fair_ece_max", "largest expected calibration error of any identity group"},
  };
  for (const std::string& a : attributes) {
    const std::string part = metric_name_part(a);
    out.emplace_back("fair_subgroup_auc_gap_" + part, "max - min subgroup AUC over the groups of " + a);
    out.emplace_back("fair_eod_" + part, "equal opportunity difference (TPR gap) over the groups of " + a);
    out.emplace_back("fair_dpd_" + part, "demographic parity difference over the groups of " + a);
    out.emplace_back("fair_eq_odds_" + part,
                     "equalized odds (max of TPR and FPR gaps) over the groups of " + a);
    out.emplace_back("fair_bpsn_gap_" + part, "max - min BPSN AUC over the groups of " + a);
    out.emplace_back("fair_bnsp_gap_" + part, "max - min BNSP AUC over the groups of " + a);
  }
  return out;
}

}  // namespace triad::fairness
