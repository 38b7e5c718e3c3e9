#include "triad/report/run_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/governance/audit_log.h"
#include "triad/governance/model_card.h"
#include "triad/train/checkpoint.h"
#include "triad/train/records.h"

namespace triad::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The JSON objects of a .jsonl file; a line that is not one is a warning naming it and is skipped.
std::vector<json> read_objects(const std::string& path, std::vector<std::string>* warnings) {
  std::vector<json> out;
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    warnings->push_back(e.what());
    return out;
  }
  size_t start = 0, line = 0;
  while (start < text.size()) {
    ++line;
    size_t end = text.find('\n', start);
    const bool torn = end == std::string::npos;
    if (torn) end = text.size();
    std::string_view content(text.data() + start, end - start);
    start = end + 1;
    if (content.empty()) continue;
    json value = json::parse(content, nullptr, false);
    if (!value.is_object()) {
      warnings->push_back(fmt::format("{}:{}: {} (skipped)", path, line,
                                      torn ? "a torn last line without a newline" : "not a JSON object"));
      continue;
    }
    out.push_back(std::move(value));
  }
  return out;
}

void sort_by_step(std::vector<json>* records) {
  std::stable_sort(records->begin(), records->end(),
                   [](const json& a, const json& b) { return number(a, "step") < number(b, "step"); });
}

void load_metrics(RunData* r) {
  const std::string path = (fs::path(r->dir) / "metrics.jsonl").string();
  if (!path_exists(path)) return;
  size_t index = 0;
  for (json& record : read_objects(path, &r->warnings)) {
    ++index;
    if (!record.contains("step") || !record["step"].is_number()) {
      r->warnings.push_back(fmt::format("{}: record {} has no numeric \"step\" (skipped)", path, index));
      continue;
    }
    if (record.contains("energy_j")) continue;  // the end record (train/energy.h)
    (record.contains("loss") ? r->steps : r->evals).push_back(std::move(record));
  }
  sort_by_step(&r->steps);
  sort_by_step(&r->evals);
}

void load_remat_plans(RunData* r) {
  const std::string path = (fs::path(r->dir) / "remat_plan.jsonl").string();
  if (!path_exists(path)) return;
  size_t index = 0;
  for (const json& line : read_objects(path, &r->warnings)) {
    ++index;
    RematPlanLine plan;
    try {
      plan.step = line.at("step").get<int>();
      plan.planner = line.value("planner", "");
      plan.why = line.value("why", "");
      plan.dropped = line.at("dropped").get<std::vector<std::vector<std::string>>>();
      plan.logits_recomputed = line.value("logits_recomputed", false);
    } catch (const json::exception&) {
      r->warnings.push_back(fmt::format(
          "{}: plan {} lacks a numeric \"step\" or a \"dropped\" list of lists (skipped)", path, index));
      continue;
    }
    r->remat_plans.push_back(std::move(plan));
  }
  std::stable_sort(r->remat_plans.begin(), r->remat_plans.end(),
                   [](const RematPlanLine& a, const RematPlanLine& b) { return a.step < b.step; });
}

void load_audit(RunData* r) {
  if (!path_exists(audit_log_path(r->dir))) return;
  r->audit.present = true;
  try {
    r->audit.verification = verify_audit(r->dir);
    const RawAuditLog raw = read_audit_lines(audit_log_path(r->dir));
    for (const std::string& line : raw.lines) {
      json entry = json::parse(line, nullptr, false);
      if (entry.is_object() && entry.value("kind", json()).is_string())
        r->audit.entries.push_back(std::move(entry));
    }
  } catch (const Error& e) {
    r->audit.verification.problems.push_back(e.what());
  }
}

void load_model_card(RunData* r) {
  const std::string path = (fs::path(r->dir) / "model_card.md").string();
  try {
    if (path_exists(path)) {
      r->model_card = read_file(path);
      r->model_card_from_file = true;
    } else if (r->audit.present) {
      r->model_card = model_card_markdown(r->dir, r->audit.verification, metric_fields());
    }
  } catch (const Error& e) {
    r->warnings.push_back(fmt::format("model card: {}", e.what()));
  }
}

void load_checkpoints(RunData* r) {
  try {
    for (const auto& [step, path] : checkpoint_dirs(r->dir))
      r->checkpoints.push_back(fs::path(path).filename());
    const std::string rejected = (fs::path(r->dir) / "checkpoints" / "rejected").string();
    if (fs::is_directory(rejected)) r->rejected_checkpoints = directory_listing(rejected);
  } catch (const std::exception& e) {
    r->warnings.push_back(fmt::format("{}/checkpoints: {}", r->dir, e.what()));
  }
}

void load_small_files(RunData* r) {
  const std::string run_json = (fs::path(r->dir) / "run.json").string();
  r->run = json::object();
  if (path_exists(run_json)) {
    json run = json::parse(read_file(run_json), nullptr, false);
    if (run.is_object())
      r->run = std::move(run);
    else
      r->warnings.push_back(fmt::format("{}: not a JSON object; the run's options are not shown", run_json));
  }
  const std::string review = (fs::path(r->dir) / "REVIEW_REQUIRED").string();
  if (path_exists(review)) {
    r->review = json::parse(read_file(review), nullptr, false);
    if (r->review.is_discarded()) r->review = "REVIEW_REQUIRED is present but is not JSON";
  }
  const std::string explanations = (fs::path(r->dir) / "explanations.json").string();
  if (path_exists(explanations)) {
    r->explanations_path = explanations;
    r->explanations = json::parse(read_file(explanations), nullptr, false);
    if (r->explanations.is_discarded()) {
      r->explanations = nullptr;
      r->warnings.push_back(fmt::format("{}: not JSON", explanations));
    }
  }
}

}  // namespace

double number(const json& record, const std::string& field) {
  auto it = record.find(field);
  if (it == record.end() || !it->is_number()) return std::numeric_limits<double>::quiet_NaN();
  return it->get<double>();
}

Curve curve(const std::vector<json>& records, const std::string& field) {
  Curve c;
  for (const json& r : records) {
    auto it = r.find(field);
    if (it == r.end() || !(it->is_number() || it->is_null())) continue;
    c.step.push_back(number(r, "step"));
    c.value.push_back(number(r, field));
  }
  return c;
}

RunData load_run(const std::string& dir) {
  if (!fs::is_directory(dir)) fail_usage("{}: no such run directory", dir);
  if (!path_exists((fs::path(dir) / "run.json").string()) &&
      !path_exists((fs::path(dir) / "metrics.jsonl").string()))
    fail_usage("{}: not a triad run (no run.json or metrics.jsonl)", dir);
  RunData r;
  r.dir = dir;
  r.name = fs::path(dir).lexically_normal().filename().string();
  if (r.name.empty()) r.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  if (r.name.empty()) r.name = dir;
  // Each part on its own: an unreadable file costs its sections, not the report.
  for (void (*load)(RunData*) :
       {load_small_files, load_metrics, load_remat_plans, load_audit, load_model_card, load_checkpoints}) {
    try {
      load(&r);
    } catch (const std::exception& e) {
      r.warnings.push_back(fmt::format("{}: {}", dir, e.what()));
    }
  }
  return r;
}

void label_runs(std::vector<RunData>* runs) {
  std::map<std::string, int> uses;
  for (const RunData& r : *runs) ++uses[r.name];
  for (RunData& r : *runs) {
    if (uses[r.name] > 1) r.name = fs::path(r.dir).lexically_normal().string();
  }
}

}  // namespace triad::report
