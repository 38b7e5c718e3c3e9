#include "triad/governance/model_card.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "triad/core/file_io.h"
#include "triad/core/sha256.h"
#include "triad/governance/audit_log.h"

namespace triad {

namespace {

constexpr size_t kMaxRows = 50;
constexpr const char* kFillIn = "*Not recorded in the audit log; to be written by the model's developers.*";

std::string cell(const nlohmann::json& value) {
  std::string s = value.is_string() ? value.get<std::string>() : value.dump();
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

// Scalars of a nested config as dotted keys, for a table.
void flatten(const nlohmann::json& value, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (value.is_object()) {
    for (const auto& [k, v] : value.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out.emplace_back(prefix, cell(value));
  }
}

struct CardData {
  std::vector<nlohmann::json> entries;  // parsed entries; null where a line does not parse
  std::map<std::string, std::vector<const nlohmann::json*>> by_kind;

  const nlohmann::json* first(const std::string& kind) const {
    auto it = by_kind.find(kind);
    return it == by_kind.end() || it->second.empty() ? nullptr : it->second.front();
  }
  const nlohmann::json* last(const std::string& kind) const {
    auto it = by_kind.find(kind);
    return it == by_kind.end() || it->second.empty() ? nullptr : it->second.back();
  }
  const std::vector<const nlohmann::json*>& all(const std::string& kind) const {
    static const std::vector<const nlohmann::json*> kNone;
    auto it = by_kind.find(kind);
    return it == by_kind.end() ? kNone : it->second;
  }
};

std::set<std::string> metric_names(const CardData& d) {
  std::set<std::string> names;
  for (const nlohmann::json* e : d.all("eval")) {
    const nlohmann::json metrics = (*e)["payload"].value("metrics", nlohmann::json::object());
    for (const auto& [k, v] : metrics.items()) names.insert(k);
  }
  return names;
}

// The fairness metrics measured per protected attribute (a classifier's evaluations, docs/fairness.md),
// in the order of the card's columns.
constexpr const char* kAttributeMetricPrefixes[] = {
    "fair_subgroup_auc_gap_", "fair_bpsn_gap_", "fair_bnsp_gap_", "fair_dpd_", "fair_eod_", "fair_eq_odds_"};

// The prefix of such a metric's name, or null for any other metric.
const char* per_group_metric(const std::string& name) {
  for (const char* prefix : kAttributeMetricPrefixes) {
    if (name.starts_with(prefix)) return prefix;
  }
  return nullptr;
}

// The eval entry's per-group values ("groups", logged by `triad classify`), a row per identity group; an
// undefined value (null) is shown as "—" and a footnote says why.
void per_group_values(std::string& md, const nlohmann::json& groups) {
  md +=
      "Per identity group, at the same evaluation (rows: the group's held-out examples; BPSN: the group's "
      "negatives against the other examples' positives, BNSP the reverse; TPR and FPR at score 0.5):\n\n"
      "| attribute | group | rows | subgroup AUC | BPSN AUC | BNSP AUC | TPR | FPR | ECE |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  std::vector<std::string> footnotes;
  for (const nlohmann::json& g : groups) {
    if (!g.is_object()) continue;
    const std::string name = cell(g.value("attribute", "")) + "/" + cell(g.value("group", ""));
    md += fmt::format("| {} | {} | {} |", cell(g.value("attribute", "")), cell(g.value("group", "")),
                      cell(g.value("rows", nlohmann::json())));
    bool undefined = false;
    for (const char* key : {"subgroup_auc", "bpsn_auc", "bnsp_auc", "tpr", "fpr", "ece"}) {
      const nlohmann::json v = g.value(key, nlohmann::json());
      undefined |= !v.is_number();
      md += fmt::format(" {} |", v.is_number() ? cell(v) : "—");
    }
    md += "\n";
    if (undefined)
      footnotes.push_back(fmt::format(
          "{}: {}", name, cell(g.value("note", "one class only among its examples, or none: undefined"))));
  }
  md += "\n";
  if (!footnotes.empty()) {
    md +=
        "— : not defined for the group (an AUC needs a positive and a negative, TPR a positive, FPR a "
        "negative); why, per group:\n\n";
    for (const std::string& f : footnotes) md += "- " + f + "\n";
    md += "\n";
  }
}

// The last evaluation's per-attribute fairness metrics, one row per attribute, then its per-group values.
void per_group_analyses(std::string& md, const CardData& d) {
  const auto& evals = d.all("eval");
  if (evals.empty()) return;
  const nlohmann::json& p = (*evals.back())["payload"];
  const nlohmann::json metrics = p.value("metrics", nlohmann::json::object());
  std::map<std::string, std::map<std::string, nlohmann::json>> rows;  // attribute -> prefix -> value
  for (const auto& [name, value] : metrics.items()) {
    if (const char* prefix = per_group_metric(name)) rows[name.substr(strlen(prefix))][prefix] = value;
  }
  if (rows.empty()) return;
  md += fmt::format(
      "Per protected attribute, at the last evaluation (step {}; max − min over the attribute's groups; "
      "docs/fairness.md):\n\n| attribute | subgroup AUC gap | BPSN AUC gap | BNSP AUC gap | demographic "
      "parity difference | equal opportunity difference | equalized odds |\n| --- | --- | --- | --- | --- "
      "| --- | --- |\n",
      cell(p.value("step", nlohmann::json())));
  for (const auto& [attribute, values] : rows) {
    md += fmt::format("| {} |", attribute);
    for (const char* prefix : kAttributeMetricPrefixes) {
      auto it = values.find(prefix);
      md += fmt::format(" {} |", it == values.end() ? "" : cell(it->second));
    }
    md += "\n";
  }
  md += "\n";
  const nlohmann::json groups = p.value("groups", nlohmann::json::array());
  if (groups.is_array() && !groups.empty()) per_group_values(md, groups);
}

CardData load(const std::string& run_dir) {
  CardData d;
  if (!path_exists(audit_log_path(run_dir))) return d;
  for (const std::string& line : read_audit_lines(audit_log_path(run_dir)).lines)
    d.entries.push_back(nlohmann::json::parse(line, nullptr, false));
  for (const nlohmann::json& e : d.entries) {
    if (e.is_object() && e.value("kind", nlohmann::json()).is_string() &&
        e.value("payload", nlohmann::json()).is_object())
      d.by_kind[e["kind"].get<std::string>()].push_back(&e);
  }
  return d;
}

void model_details(std::string& md, const CardData& d, const std::string& run_dir) {
  md += "## Model details\n\n";
  const nlohmann::json* start = d.first("run_start");
  const nlohmann::json* end = d.last("run_end");
  if (!start) {
    md += "No run_start entry: the log does not say how the model was trained.\n\n";
    return;
  }
  const nlohmann::json& p = (*start)["payload"];
  md += fmt::format("- Trained with triad {} on host `{}` (rank {}), started {}.\n",
                    cell(p.value("triad_version", "?")), cell((*start)["host"]), cell((*start)["rank"]),
                    cell((*start)["time"]));
  const auto& starts = d.all("run_start");
  std::map<uint64_t, std::string> resumes;  // by seq: resumes and `triad launch` relaunches, in log order
  for (size_t i = 1; i < starts.size(); ++i)
    resumes[(*starts[i])["seq"]] =
        fmt::format("- Resumed {} from step {}.\n", cell((*starts[i])["time"]),
                    cell((*starts[i])["payload"].value("resumed_from_step", nlohmann::json("?"))));
  for (const nlohmann::json* restart : d.all("restart"))
    resumes[(*restart)["seq"]] =
        fmt::format("- Relaunched by `triad launch` {} after {}.\n", cell((*restart)["time"]),
                    cell((*restart)["payload"].value("exit", nlohmann::json("?"))));
  for (const auto& [seq, line] : resumes) md += line;
  if (end && (*end)["seq"] > (*starts.back())["seq"]) {
    const nlohmann::json& e = (*end)["payload"];
    md +=
        fmt::format("- Ended {} with status **{}**{}.\n", cell((*end)["time"]), cell(e.value("status", "?")),
                    e.contains("reason") ? fmt::format(" ({})", cell(e["reason"])) : "");
  } else {
    md += "- No run_end entry after the last start: the run did not finish, or is still running.\n";
  }
  if (p.contains("command") && !p["command"].empty())
    md += fmt::format("- Command: `{}`\n", cell(p["command"]));
  md += fmt::format("- Configuration SHA-256 (canonical JSON): `{}`\n", cell(p.value("config_sha256", "?")));
  md += fmt::format("- Audit log: `{}` ({} entries)\n\n", audit_log_path(run_dir), d.entries.size());
  std::vector<std::pair<std::string, std::string>> config;
  flatten(p.value("config", nlohmann::json::object()), "", config);
  if (!config.empty()) {
    md += "| configuration | value |\n| --- | --- |\n";
    for (const auto& [k, v] : config) md += fmt::format("| `{}` | {} |\n", k, v);
    md += "\n";
  }
  const auto& checkpoints = d.all("checkpoint");
  if (!checkpoints.empty()) {
    // Files a later files_removed entry records as gone (pruned checkpoints) are marked, not hidden.
    std::set<std::pair<std::string, std::string>> removed;
    for (const nlohmann::json* e : d.all("files_removed")) {
      for (const auto& f : (*e)["payload"].value("removed", nlohmann::json::array()))
        removed.insert({f.value("path", ""), f.value("sha256", "")});
    }
    md +=
        "Checkpoints (SHA-256 of every file, as logged):\n\n| step | file | bytes | SHA-256 |\n| --- | --- | "
        "--- | --- |\n";
    for (const nlohmann::json* e : checkpoints) {
      const nlohmann::json& cp = (*e)["payload"];
      for (const auto& f : cp.value("files", nlohmann::json::array())) {
        const bool gone = removed.contains({f.value("path", ""), f.value("sha256", "")});
        md += fmt::format("| {} | `{}`{} | {} | `{}` |\n", cell(cp.value("step", nlohmann::json())),
                          cell(f.value("path", "")), gone ? " (removed since)" : "",
                          cell(f.value("bytes", nlohmann::json())), cell(f.value("sha256", "")));
      }
    }
    md += "\n";
  }
}

void training_data(std::string& md, const CardData& d, const std::string& run_dir) {
  md += "## Training data\n\n";
  const nlohmann::json* start = d.first("run_start");
  const nlohmann::json files =
      start ? (*start)["payload"].value("files", nlohmann::json::array()) : nlohmann::json::array();
  if (files.empty()) {
    md += "No data manifest was logged.\n\n";
    return;
  }
  const nlohmann::json& f = files[0];
  std::string path = resolve_logged_path(run_dir, f.value("path", ""));
  md += fmt::format("- Data manifest (from `triad prepare`): `{}`, SHA-256 `{}`\n", cell(f.value("path", "")),
                    cell(f.value("sha256", "")));
  bool intact = path_exists(path) && sha256_file_hex(path) == f.value("sha256", "");
  if (!intact) {
    md +=
        "- The manifest is missing or has changed since the run started, so its contents are not shown.\n\n";
    return;
  }
  nlohmann::json manifest = nlohmann::json::parse(read_file(path), nullptr, false);
  if (!manifest.is_object()) {
    md += "\n";
    return;
  }
  for (const auto& input : manifest.value("inputs", nlohmann::json::array()))
    md += fmt::format("- Input `{}`, SHA-256 `{}`\n", cell(input.value("path", input.value("file", ""))),
                      cell(input.value("sha256", "")));
  const nlohmann::json counts = manifest.value("counts", nlohmann::json::object());
  if (counts.contains("train") && counts.contains("val"))
    md += fmt::format("- Tokens: {} train, {} validation ({} documents kept of {} read)\n",
                      cell(counts["train"].value("tokens", 0)), cell(counts["val"].value("tokens", 0)),
                      cell(counts.value("documents_kept", 0)), cell(counts.value("documents_read", 0)));
  md += "\n";
}

void quantitative(std::string& md, const CardData& d) {
  md += "## Quantitative analyses\n\n";
  const auto& evals = d.all("eval");
  std::set<std::string> names = metric_names(d);
  // Per-attribute fairness metrics (fair_<metric>_<attribute>) get their own table below.
  std::erase_if(names, [](const std::string& n) { return per_group_metric(n) != nullptr; });
  if (evals.empty()) {
    md += "No evaluations were logged.\n\n";
  } else {
    md += "| step |";
    for (const std::string& n : names) md += fmt::format(" {} |", n);
    md += "\n| --- |";
    for (size_t i = 0; i < names.size(); ++i) md += " --- |";
    md += "\n";
    size_t skip = evals.size() > kMaxRows ? evals.size() - kMaxRows : 0;
    if (skip) {
      md += fmt::format("| ({} earlier evaluations in the log) |", skip);
      md.append(names.size(), '|');
      md += '\n';
    }
    for (size_t i = skip; i < evals.size(); ++i) {
      const nlohmann::json& p = (*evals[i])["payload"];
      const nlohmann::json metrics = p.value("metrics", nlohmann::json::object());
      md += fmt::format("| {} |", cell(p.value("step", nlohmann::json())));
      for (const std::string& n : names)
        md += fmt::format(" {} |", metrics.contains(n) ? cell(metrics[n]) : "");
      md += "\n";
    }
    md += "\n";
  }
  per_group_analyses(md, d);
  const nlohmann::json* privacy = d.last("privacy");
  if (!privacy) {
    md += "Differential privacy: no privacy ledger entries (the run was not trained with DP-SGD).\n\n";
  } else {
    const nlohmann::json& p = (*privacy)["payload"];
    md += fmt::format(
        "Differential privacy (DP-SGD, RDP accountant, {} conversion): **ε = {}** at δ = {} after {} steps "
        "(sampling rate {}, noise multiplier {}, best order {}).\n\n",
        cell(p.value("conversion", "?")), cell(p.value("epsilon", nlohmann::json())),
        cell(p.value("delta", nlohmann::json())), cell(p.value("steps", nlohmann::json())),
        cell(p.value("sample_rate", nlohmann::json())), cell(p.value("noise_multiplier", nlohmann::json())),
        cell(p.value("order", nlohmann::json())));
  }
}

void governance(std::string& md, const CardData& d) {
  md += "## Ethical considerations\n\n" + std::string(kFillIn) + "\n\n";
  const nlohmann::json* policy = d.last("policy");
  if (policy) {
    md += "Policies in force:\n\n| rule | when | action |\n| --- | --- | --- |\n";
    for (const auto& r : (*policy)["payload"].value("rules", nlohmann::json::array()))
      md += fmt::format("| {} | `{}` | {} |\n", cell(r.value("name", "")), cell(r.value("when", "")),
                        cell(r.value("action", "")));
    md += "\n";
  }
  const auto& decisions = d.all("policy_decision");
  if (decisions.empty()) {
    md += policy ? "No policy rule fired.\n\n" : "No policies were in force.\n\n";
  } else {
    md +=
        "Policy decisions:\n\n| entry | time | step | rule | action | message |\n| --- | --- | --- | --- | "
        "--- | --- |\n";
    for (const nlohmann::json* e : decisions) {
      const nlohmann::json& p = (*e)["payload"];
      md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", cell((*e)["seq"]), cell((*e)["time"]),
                        cell(p.value("step", nlohmann::json())), cell(p.value("rule", "")),
                        cell(p.value("action", "")), cell(p.value("message", "")));
    }
    md += "\n";
    for (const nlohmann::json* e : decisions) {
      if ((*e)["payload"].value("action", "") == "review") {
        md += "**This run is marked as needing review** (a review rule fired).\n\n";
        break;
      }
    }
  }
  size_t inferences = d.all("inference").size();
  if (inferences)
    md += fmt::format("{} inference requests were logged (hashes of prompt and output).\n\n", inferences);
}

void caveats(std::string& md, const VerifyReport& v) {
  md += "## Caveats and recommendations\n\n";
  if (v.ok()) {
    md += fmt::format(
        "Audit log verification: **passed** ({} entries, {} heads of which {} with a verified signature, {} "
        "logged files re-hashed).\n",
        v.entries, v.heads, v.signed_heads, v.files);
  } else {
    md += fmt::format(
        "Audit log verification: **FAILED** ({} problems). The facts above may have been altered:\n",
        v.problems.size());
    for (const std::string& p : v.problems) md += "- " + cell(p) + "\n";
  }
  for (const std::string& n : v.notes) md += "- Note: " + cell(n) + "\n";
  md +=
      "\nThis card reports what the run logged; it supports, and does not replace, a review by people who "
      "know "
      "the model's intended use.\n";
}

}  // namespace

std::string model_card_markdown(const std::string& run_dir, const VerifyReport& verification,
                                const std::map<std::string, std::string>& metric_meanings) {
  CardData d = load(run_dir);
  std::string name = std::filesystem::path(run_dir).lexically_normal().filename().string();
  if (name.empty()) name = run_dir;
  std::string md = fmt::format("# Model card: {}\n\n", name);
  md +=
      "*Written by `triad audit card` from the run's audit log. Sections follow Mitchell et al. (2019), "
      "\"Model "
      "Cards for Model Reporting\".*\n\n";
  model_details(md, d, run_dir);
  md += "## Intended use\n\n" + std::string(kFillIn) + "\n\n";
  md += "## Factors\n\n" + std::string(kFillIn) +
        " (Groups, instrumentation and environments the model's "
        "performance may depend on; a classifier's fairness metrics per protected attribute and identity "
        "group, when its evaluations measured them, are under Quantitative analyses.)\n\n";
  md += "## Metrics\n\n";
  std::set<std::string> names = metric_names(d);
  if (names.empty()) {
    md += "No evaluation metrics were logged.\n\n";
  } else {
    md += fmt::format(
        "Logged evaluation metrics: {}. Policy thresholds on them are listed under Ethical "
        "considerations.\n\n",
        fmt::join(names, ", "));
    for (const std::string& n : names) {
      auto it = metric_meanings.find(n);
      if (it != metric_meanings.end()) md += fmt::format("- `{}`: {}\n", n, it->second);
    }
    md += "\n";
  }
  md +=
      "## Evaluation data\n\nThe validation split recorded in the data manifest (see Training data), unless "
      "the "
      "configuration names another.\n\n";
  training_data(md, d, run_dir);
  quantitative(md, d);
  governance(md, d);
  caveats(md, verification);
  return md;
}

}  // namespace triad
