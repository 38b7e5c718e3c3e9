#include "triad/report/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>

#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/report/report_sections.h"
#include "triad/report/svg_plot.h"

namespace triad::report {

namespace {

using nlohmann::json;

// Nothing may load: the policy forbids every fetch, so a mistake shows as a blocked request, not a leak.
constexpr const char* kHead = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<style>
body {{ font-family: sans-serif; color: #222; max-width: 920px; margin: 0 auto; padding: 0 16px 48px; }}
h1 {{ font-size: 1.5em; margin: 20px 0 4px; }}
h2 {{ font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }}
h3 {{ font-size: 1em; margin: 18px 0 6px; }}
nav a {{ margin-right: 10px; font-size: 0.9em; }}
table {{ border-collapse: collapse; margin: 8px 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f5f5f5; }}
code {{ font-size: 0.95em; overflow-wrap: anywhere; }}
td {{ overflow-wrap: anywhere; }}
td:first-child {{ overflow-wrap: normal; white-space: nowrap; }}
svg {{ max-width: 100%; height: auto; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; }}
.ok {{ color: #1a7f37; font-weight: bold; }}
.bad {{ color: #c0392b; font-weight: bold; }}
.issues li.bad {{ font-weight: normal; }}
p.small {{ font-size: 0.85em; color: #555; }}
</style></head><body>
)";

std::string esc(const std::string& s) {
  return escape_xml(s);
}

std::string text_of(const json& v) {
  if (v.is_null()) return "";
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Seconds since the epoch of an audit entry's "2025-01-02T03:04:05.678Z"; nullopt when it is not one.
std::optional<double> utc_seconds(const json& time) {
  if (!time.is_string()) return std::nullopt;
  std::tm tm{};
  double seconds = 0;
  if (std::sscanf(time.get<std::string>().c_str(), "%d-%d-%dT%d:%d:%lfZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &seconds) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + seconds;
}

std::vector<const json*> entries_of(const RunData& run, const std::string& kind) {
  std::vector<const json*> out;
  for (const json& e : run.audit.entries) {
    if (e["kind"] == kind) out.push_back(&e);
  }
  return out;
}

const json& payload(const json* entry) {
  static const json kEmpty = json::object();
  auto it = entry->find("payload");
  return it != entry->end() && it->is_object() ? *it : kEmpty;
}

// Everything that went wrong in a run, each one line of HTML, worst first.
std::vector<std::string> issues(const RunData& run) {
  std::vector<std::string> out;
  const auto starts = entries_of(run, "run_start"), ends = entries_of(run, "run_end");
  if (!ends.empty() && (starts.empty() || (*ends.back())["seq"] > (*starts.back())["seq"])) {
    const json& p = payload(ends.back());
    const std::string status = p.value("status", "?");
    if (status != "completed")
      out.push_back(fmt::format("the run ended <b>{}</b> at step {}{}", esc(status),
                                esc(text_of(p.value("step", json()))),
                                p.contains("reason") ? ": " + esc(text_of(p["reason"])) : ""));
  } else if (!starts.empty()) {
    out.push_back("no <code>run_end</code> after the last start: the run is still going, or was killed");
  }
  for (const json* d : entries_of(run, "policy_decision")) {
    const json& p = payload(d);
    out.push_back(fmt::format("policy {} <code>{}</code> at step {}: {}", esc(p.value("action", "?")),
                              esc(p.value("rule", "?")), esc(text_of(p.value("step", json()))),
                              esc(text_of(p.value("message", json())))));
  }
  if (!run.review.is_null()) {
    std::vector<std::string> reasons;
    if (run.review.is_object()) {
      for (const json& r : run.review.value("reasons", json::array()))
        reasons.push_back(esc(r.is_object() ? r.value("rule", "?") : text_of(r)));
    }
    out.push_back(fmt::format("<code>REVIEW_REQUIRED</code>: the run awaits review{}",
                              reasons.empty() ? "" : fmt::format(" ({})", fmt::join(reasons, ", "))));
  }
  const auto restarts = entries_of(run, "restart");
  if (!restarts.empty()) {
    std::vector<std::string> what;
    for (const json* r : restarts) what.push_back(esc(text_of(payload(r))).substr(0, 200));
    out.push_back(fmt::format("restarted {} time(s): {}", restarts.size(), fmt::join(what, "; ")));
  }
  size_t non_finite = 0;
  for (const json& r : run.steps) {
    for (const char* field : {"loss", "grad_norm"})
      non_finite += r.contains(field) && !std::isfinite(number(r, field));
  }
  if (non_finite)
    out.push_back(fmt::format("{} non-finite loss or gradient-norm value(s) in metrics.jsonl", non_finite));
  if (!run.rejected_checkpoints.empty())
    out.push_back(fmt::format("rejected checkpoint(s) in checkpoints/rejected/: {}",
                              esc(some_of(run.rejected_checkpoints))));
  if (run.audit.present && !run.audit.verification.ok())
    out.push_back(fmt::format("audit verification <b>failed</b> with {} problem(s); the first: {}",
                              run.audit.verification.problems.size(),
                              esc(run.audit.verification.problems.front())));
  if (!run.warnings.empty())
    out.push_back(
        fmt::format("{} file problem(s) while reading the run (see <a href=\"#warnings\">Warnings</a>)",
                    run.warnings.size()));
  return out;
}

std::string layout_text(const json& run) {
  const json o = run.value("options", json::object());
  const int ranks = run.value("ranks", 1);
  const int tensor = o.value("tensor_parallel", 1), pipeline = o.value("pipeline_parallel", 1);
  std::string s = ranks == 1 ? "1 process" : fmt::format("{} ranks", ranks);
  if (ranks > 1 || tensor > 1 || pipeline > 1)
    s += fmt::format(" (data × tensor × pipeline = {} × {} × {})", ranks / std::max(1, tensor * pipeline),
                     tensor, pipeline);
  if (ranks > 1) s += fmt::format("; gradients <code>{}</code>", esc(o.value("grad_compression", "none")));
  if (o.value("zero", 0) == 1) s += ", ZeRO-1";
  if (!o.value("activation_memory", std::string()).empty() || !o.value("remat", std::string()).empty())
    s += fmt::format("; activation memory {} (remat {})", esc(o.value("activation_memory", "unlimited")),
                     esc(o.value("remat", std::string()).empty() ? "optimal" : o.value("remat", "")));
  if (number(o, "dp_noise") > 0)
    s += fmt::format("; DP-SGD σ = {}, C = {}, δ = {}", format_value(number(o, "dp_noise")),
                     format_value(number(o, "dp_clip")), format_value(number(o, "dp_delta")));
  return s;
}

std::string duration_text(const RunData& run) {
  double step_seconds = 0, tokens = 0;
  for (const json& r : run.steps) {
    const double ms = number(r, "step_ms"), rate = number(r, "tokens_per_s");
    if (std::isfinite(ms)) step_seconds += ms / 1e3;
    if (std::isfinite(ms) && std::isfinite(rate)) tokens += rate * ms / 1e3;
  }
  std::string s;
  const auto starts = entries_of(run, "run_start"), ends = entries_of(run, "run_end");
  if (!starts.empty() && !ends.empty()) {
    auto from = utc_seconds((*starts.front())["time"]), to = utc_seconds((*ends.back())["time"]);
    if (from && to && *to >= *from)
      s = format_duration(*to - *from) + " wall (start to end in the audit log), ";
  }
  s += format_duration(step_seconds) + " in steps";
  if (step_seconds > 0)
    s += fmt::format("; {:.0f} tokens in all, {:.0f} tokens/s", tokens, tokens / step_seconds);
  return s;
}

std::string quality_text(const RunData& run) {
  const Curve loss = curve(run.steps, "loss");
  if (loss.empty()) return "";
  std::string s =
      fmt::format("{} at step {}", format_value(loss.value.back()), format_value(loss.step.back()));
  const size_t tail = std::min<size_t>(10, loss.value.size());
  double sum = 0;
  for (size_t i = loss.value.size() - tail; i < loss.value.size(); ++i) sum += loss.value[i];
  if (tail > 1) s += fmt::format(" (mean of the last {} steps {})", tail, format_value(sum / tail));
  return s;
}

std::string validation_text(const RunData& run) {
  const Curve val = curve(run.evals, "val_loss");
  if (val.empty()) return "";
  std::string s = fmt::format("{} (perplexity {:.2f}) at step {}", format_value(val.value.back()),
                              std::exp(val.value.back()), format_value(val.step.back()));
  const double best = *std::min_element(val.value.begin(), val.value.end());
  if (val.value.size() > 1) s += fmt::format("; best {}", format_value(best));
  return s;
}

Section summary_section(const std::vector<RunData>& runs) {
  std::vector<std::string> header{""};
  for (size_t i = 0; i < runs.size(); ++i) header.push_back(run_tag(runs, i));
  std::vector<std::pair<std::string, std::vector<std::string>>> facts = {
      {"model", {}}, {"data", {}},       {"steps", {}},           {"layout", {}},
      {"time", {}},  {"final loss", {}}, {"validation loss", {}}, {"went wrong", {}}};
  for (const RunData& run : runs) {
    const json o = run.run.value("options", json::object());
    const Curve loss = curve(run.steps, "loss");
    const std::string steps = loss.empty() ? "none recorded" : format_value(loss.step.back());
    const std::vector<std::string> problems = issues(run);
    std::vector<std::string> column = {
        esc(run.run.value("model", "?")),
        "<code>" + esc(o.value("data", std::string()).empty() ? "the bundled corpus" : o.value("data", "")) +
            "</code>",
        o.contains("steps") ? fmt::format("{} of {}", steps, esc(text_of(o["steps"]))) : steps,
        layout_text(run.run),
        duration_text(run),
        quality_text(run),
        validation_text(run),
        problems.empty() ? "<span class=\"ok\">nothing</span>"
                         : fmt::format("<ul class=\"issues\"><li class=\"bad\">{}</li></ul>",
                                       fmt::join(problems, "</li><li class=\"bad\">"))};
    for (size_t k = 0; k < facts.size(); ++k) facts[k].second.push_back(column[k]);
  }
  std::vector<std::vector<std::string>> rows;
  for (auto& [name, cells] : facts) {
    if (std::all_of(cells.begin(), cells.end(), [](const std::string& c) { return c.empty(); })) continue;
    cells.insert(cells.begin(), "<b>" + name + "</b>");
    rows.push_back(std::move(cells));
  }
  return {"summary", "Summary", html_table(header, rows)};
}

std::string entry_summary(const json& e) {
  const std::string kind = e["kind"];
  const json& p = payload(&e);
  if (kind == "run_start")
    return fmt::format("triad {}{}", esc(text_of(p.value("triad_version", json()))),
                       p.contains("resumed_from_step")
                           ? fmt::format(", resumed from step {}", esc(text_of(p["resumed_from_step"])))
                           : "");
  if (kind == "run_end")
    return fmt::format("<b>{}</b> at step {}{}{}", esc(p.value("status", "?")),
                       esc(text_of(p.value("step", json()))),
                       p.contains("loss") ? ", loss " + format_value(number(p, "loss")) : "",
                       p.contains("reason") ? ": " + esc(text_of(p["reason"])) : "");
  std::string s = text_of(p);
  return esc(s.size() > 200 ? s.substr(0, 197) + "..." : s);
}

std::optional<Section> audit_section(const std::vector<RunData>& runs) {
  std::string html;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunData& run = runs[i];
    if (!run.audit.present) continue;
    const VerifyReport& v = run.audit.verification;
    html += fmt::format(
        "<h3>{}</h3><p><span class=\"{}\">{}</span>: {} entries, {} tree heads ({} with a verified "
        "signature), {} "
        "logged files re-hashed (as <code>triad audit verify</code> checks).</p>",
        run_tag(runs, i), v.ok() ? "ok" : "bad", v.ok() ? "verified" : "FAILED", v.entries, v.heads,
        v.signed_heads, v.files);
    if (!v.problems.empty()) {
      html += "<ul>";
      for (const std::string& p : v.problems) html += "<li class=\"bad\">" + esc(p) + "</li>";
      html += "</ul>";
    }
    for (const std::string& n : v.notes) html += "<p class=\"small\">note: " + esc(n) + "</p>";
    std::map<std::string, int> kinds;
    std::vector<std::vector<std::string>> events;
    for (const json& e : run.audit.entries) {
      const std::string kind = e["kind"];
      ++kinds[kind];
      if (kind == "run_start" || kind == "run_end" || kind == "policy_decision" || kind == "restart")
        events.push_back({esc(text_of(e.value("seq", json()))), esc(text_of(e.value("time", json()))),
                          "<code>" + esc(kind) + "</code>", entry_summary(e)});
    }
    std::vector<std::string> counts;
    for (const auto& [k, n] : kinds) counts.push_back(fmt::format("<code>{}</code> × {}", esc(k), n));
    html += fmt::format("<p class=\"small\">Entries by kind: {}.</p>", fmt::join(counts, ", "));
    if (events.size() > 50) events.erase(events.begin() + 25, events.end() - 25);
    html += html_table({"seq", "time", "kind", "what"}, events);
  }
  if (html.empty()) return std::nullopt;
  return Section{"audit", "Audit log", html};
}

// Markdown inline code and bold, for the model card's lines; everything else is escaped text.
std::string markdown_inline(const std::string& line) {
  std::string out, text = esc(line);
  bool code = false, bold = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '`') {
      out += (code = !code) ? "<code>" : "</code>";
    } else if (!code && text.compare(i, 2, "**") == 0) {
      out += (bold = !bold) ? "<b>" : "</b>";
      ++i;
    } else {
      out += text[i];
    }
  }
  if (code) out += "</code>";
  if (bold) out += "</b>";
  return out;
}

std::optional<Section> model_card_section(const std::vector<RunData>& runs) {
  std::string html;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunData& run = runs[i];
    if (run.model_card.empty()) continue;
    // The bullet points of the card's "Model details" and "Training data": the facts, not the tables.
    std::string items, heading;
    size_t start = 0;
    while (start < run.model_card.size()) {
      size_t end = run.model_card.find('\n', start);
      if (end == std::string::npos) end = run.model_card.size();
      const std::string line = run.model_card.substr(start, end - start);
      start = end + 1;
      if (line.starts_with("## ")) heading = line.substr(3);
      if ((heading == "Model details" || heading == "Training data") && line.starts_with("- "))
        items += "<li>" + markdown_inline(line.substr(2)) + "</li>";
    }
    html += fmt::format("<h3>{}</h3><p class=\"small\">From {}.</p><ul>{}</ul>", run_tag(runs, i),
                        run.model_card_from_file
                            ? "<code>model_card.md</code>"
                            : "the audit log (<code>triad audit card</code> writes the card)",
                        items);
  }
  if (html.empty()) return std::nullopt;
  return Section{"model-card", "Model card", html};
}

std::optional<Section> explanations_section(const std::vector<RunData>& runs) {
  std::string html;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunData& run = runs[i];
    if (run.explanations_path.empty()) continue;
    std::vector<std::vector<std::string>> rows;
    const json& e = run.explanations;
    if (e.is_object()) {
      for (const auto& [k, v] : e.items())
        rows.push_back({"<code>" + esc(k) + "</code>", v.is_array()    ? fmt::format("{} entries", v.size())
                                                       : v.is_object() ? fmt::format("{} fields", v.size())
                                                                       : esc(text_of(v).substr(0, 200))});
    } else if (e.is_array()) {
      rows.push_back({"entries", std::to_string(e.size())});
    }
    html += fmt::format("<h3>{}</h3><p><code>{}</code> ({})</p>", run_tag(runs, i),
                        esc(run.explanations_path), format_bytes(file_size(run.explanations_path))) +
            (rows.empty() ? "" : html_table({"field", "value"}, rows));
  }
  if (html.empty()) return std::nullopt;
  return Section{"explanations", "Explanations", html};
}

std::optional<Section> warnings_section(const std::vector<RunData>& runs) {
  std::string items;
  for (size_t i = 0; i < runs.size(); ++i) {
    for (const std::string& w : runs[i].warnings)
      items += "<li>" + run_tag(runs, i) + ": " + esc(w) + "</li>";
  }
  if (items.empty()) return std::nullopt;
  return Section{"warnings", "Warnings",
                 "<p>Parts of the run that could not be read; the rest is shown.</p><ul>" + items + "</ul>"};
}

std::vector<Section> sections(const std::vector<RunData>& runs) {
  std::vector<Section> out{summary_section(runs)};
  for (Section& s : plot_sections(runs)) out.push_back(std::move(s));
  for (auto build : {explanations_section, audit_section, model_card_section, warnings_section}) {
    if (std::optional<Section> s = build(runs)) out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace

std::string run_tag(const std::vector<RunData>& runs, size_t i) {
  return fmt::format("<span class=\"swatch\" style=\"background:{}\"></span>{}", run_colour(i),
                     esc(runs[i].name));
}

std::string format_value(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "?" : (v > 0 ? "inf" : "-inf");
  if (v == std::round(v) && std::fabs(v) < 1e12) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

std::string html_table(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return "";
  std::string html = "<table><thead><tr>";
  for (const std::string& h : header) html += "<th>" + h + "</th>";
  html += "</tr></thead><tbody>";
  for (const auto& row : rows) {
    html += "<tr>";
    for (const std::string& cell : row) html += "<td>" + cell + "</td>";
    html += "</tr>";
  }
  return html + "</tbody></table>";
}

std::string render_report(const std::vector<RunData>& runs) {
  std::vector<std::string> names;
  for (const RunData& r : runs) names.push_back(r.name);
  const std::string title = fmt::format("triad report: {}", fmt::join(names, ", "));
  std::string html = fmt::format(kHead, esc(title));
  const std::vector<Section> parts = sections(runs);
  html += fmt::format("<header><h1>{}</h1><nav>", esc(title));
  for (const Section& s : parts) html += fmt::format("<a href=\"#{}\">{}</a>", s.id, esc(s.title));
  html += "</nav></header>\n";
  for (const Section& s : parts)
    html += fmt::format("<section id=\"{}\"><h2>{}</h2>\n{}\n</section>\n", s.id, esc(s.title), s.html);
  return html + "</body></html>\n";
}

size_t write_report(const std::vector<std::string>& run_dirs, const std::string& out) {
  std::vector<RunData> runs;
  for (const std::string& dir : run_dirs) runs.push_back(load_run(dir));
  label_runs(&runs);
  for (const RunData& r : runs) {
    for (const std::string& w : r.warnings) log_warn("{}", w);
  }
  const std::string html = render_report(runs);
  write_file_atomic(out, html);
  return html.size();
}

}  // namespace triad::report
