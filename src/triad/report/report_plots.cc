// The report's curves and maps: each builder looks for its fields in every run and returns no section when
// none has them.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "triad/core/format.h"
#include "triad/model/dataflow.h"
#include "triad/report/report_sections.h"
#include "triad/report/svg_plot.h"

namespace triad::report {

namespace {

using nlohmann::json;

constexpr size_t kHeatmapColumns = 300;

// Bytes in the binary unit that suits `largest`: the plot's values are divided by `scale` and its axis is
// titled with `name`, so the ticks fall on round numbers of that unit.
struct ByteUnit {
  double scale;
  const char* name;
};
ByteUnit byte_unit(double largest) {
  if (largest >= 1024.0 * 1024 * 1024) return {1024.0 * 1024 * 1024, "GiB"};
  if (largest >= 1024.0 * 1024) return {1024.0 * 1024, "MiB"};
  if (largest >= 1024.0) return {1024.0, "KiB"};
  return {1, "bytes"};
}

// Divides every series' values by a byte unit that fits them and names it in the axis title.
void in_byte_units(LinePlot* plot, const std::string& what) {
  double largest = 0;
  for (const Series& s : plot->series) {
    for (double v : s.y)
      if (std::isfinite(v)) largest = std::max(largest, v);
  }
  const ByteUnit unit = byte_unit(largest);
  for (Series& s : plot->series) {
    for (double& v : s.y) v /= unit.scale;
  }
  plot->y_label = fmt::format("{} ({})", what, unit.name);
}

bool has_field(const std::vector<RunData>& runs, const std::string& field, bool evals = false) {
  for (const RunData& r : runs) {
    for (const json& record : evals ? r.evals : r.steps) {
      if (record.contains(field)) return true;
    }
  }
  return false;
}

// A series' legend text: the run's name when several runs share a plot, `what` with one run.
std::string label(const std::vector<RunData>& runs, size_t i, const std::string& what) {
  if (runs.size() == 1) return what;
  return what.empty() ? runs[i].name : runs[i].name + " " + what;
}

Series series(const Curve& c, std::string name, std::string colour, bool dashed = false, bool dots = false) {
  Series s;
  s.label = std::move(name);
  s.x = c.step;
  s.y = c.value;
  s.colour = std::move(colour);
  s.dashed = dashed;
  s.dots = dots;
  return s;
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  size_t n = 0;
  for (double x : v) {
    if (std::isfinite(x)) sum += x, ++n;
  }
  return n ? sum / n : std::nan("");
}

std::optional<Section> loss_section(const std::vector<RunData>& runs) {
  LinePlot plot;
  plot.y_label = "loss";
  for (size_t i = 0; i < runs.size(); ++i) {
    const Curve train = curve(runs[i].steps, "loss"), val = curve(runs[i].evals, "val_loss");
    if (!train.empty()) plot.series.push_back(series(train, label(runs, i, "train loss"), run_colour(i)));
    if (!val.empty())
      plot.series.push_back(series(val, label(runs, i, "validation loss"), run_colour(i), true, true));
  }
  if (plot.series.empty()) return std::nullopt;
  return Section{"loss", "Loss",
                 "<p>Training loss of every step (mean next-token loss of its batch); dashed with dots: the "
                 "validation loss at each evaluation.</p>" +
                     svg_line_plot(plot)};
}

std::optional<Section> throughput_section(const std::vector<RunData>& runs) {
  LinePlot plot;
  plot.y_label = "tokens / s";
  plot.y_from_zero = true;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Curve c = curve(runs[i].steps, "tokens_per_s");
    if (!c.empty()) plot.series.push_back(series(c, label(runs, i, "tokens/s"), run_colour(i)));
  }
  if (plot.series.empty()) return std::nullopt;
  return Section{"throughput", "Throughput",
                 "<p>Tokens trained on per second of each step.</p>" + svg_line_plot(plot)};
}

std::optional<Section> step_time_section(const std::vector<RunData>& runs) {
  std::string html;
  for (size_t i = 0; i < runs.size(); ++i) {
    StackedPlot plot;
    plot.y_label = "ms per step";
    StackedPlot::Layer compute{"compute", "#4c78a8", {}}, exposed{"exposed communication", "#f58518", {}},
        recompute{"recompute", "#e45756", {}};
    bool any_comm = false, any_recompute = false;
    for (const json& r : runs[i].steps) {
      const double step_ms = number(r, "step_ms");
      if (!std::isfinite(step_ms)) continue;
      const double comm = number(r, "comm_ms"), hidden = number(r, "comm_hidden_fraction");
      const double exposed_ms = std::isfinite(comm) ? comm * (1 - (std::isfinite(hidden) ? hidden : 0)) : 0;
      const double recompute_ms = std::isfinite(number(r, "recompute_ms")) ? number(r, "recompute_ms") : 0;
      any_comm |= std::isfinite(comm);
      any_recompute |= std::isfinite(number(r, "recompute_ms"));
      plot.x.push_back(number(r, "step"));
      compute.y.push_back(std::max(0.0, step_ms - exposed_ms - recompute_ms));
      exposed.y.push_back(exposed_ms);
      recompute.y.push_back(recompute_ms);
    }
    if (plot.x.empty()) continue;
    plot.layers.push_back(compute);
    if (any_comm) plot.layers.push_back(exposed);
    if (any_recompute) plot.layers.push_back(recompute);
    std::string means;
    for (const auto& layer : plot.layers) means += fmt::format(", {} {:.1f}", layer.label, mean(layer.y));
    html += fmt::format("<h3>{}</h3><p>Mean ms per step{}.</p>", run_tag(runs, i), means) +
            svg_stacked_area(plot);
  }
  if (html.empty()) return std::nullopt;
  return Section{
      "step-time", "Step time",
      "<p>Each step's wall time split into compute, exposed communication (<code>comm_ms</code> × "
      "(1 − <code>comm_hidden_fraction</code>): gradient traffic the backward did not hide) and "
      "recomputation of dropped activations; long runs are averaged over equal runs of steps.</p>" +
          html};
}

std::optional<Section> memory_section(const std::vector<RunData>& runs) {
  if (!has_field(runs, "peak_activation_bytes")) return std::nullopt;
  LinePlot plot;
  plot.y_from_zero = true;
  std::string notes;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Curve measured = curve(runs[i].steps, "peak_activation_bytes");
    const Curve predicted = curve(runs[i].steps, "predicted_peak_activation_bytes");
    if (!measured.empty())
      plot.series.push_back(series(measured, label(runs, i, "measured peak"), run_colour(i)));
    if (predicted.empty()) continue;
    plot.series.push_back(series(predicted, label(runs, i, "predicted peak"), run_colour(i), true));
    size_t equal = 0, compared = 0;
    double worst = 0;
    for (const json& r : runs[i].steps) {
      const double m = number(r, "peak_activation_bytes"), p = number(r, "predicted_peak_activation_bytes");
      if (!std::isfinite(m) || !std::isfinite(p)) continue;
      ++compared;
      equal += m == p;
      worst = std::max(worst, std::fabs(m - p));
    }
    notes += fmt::format("<li>{}: measured equals predicted in {} of {} steps; largest difference {}.</li>",
                         run_tag(runs, i), equal, compared,
                         worst == 0 ? "none" : format_bytes(static_cast<size_t>(worst)));
  }
  in_byte_units(&plot, "activation memory");
  return Section{"memory", "Activation memory",
                 "<p>Peak of live activation memory in each step as the arena measured it; dashed: the "
                 "rematerialization plan's prediction.</p>" +
                     (notes.empty() ? "" : "<ul>" + notes + "</ul>") + svg_line_plot(plot)};
}

// Rows: block l × unit (block_units() order), then the logits. Columns: equal runs of the steps
// [first, last]; a cell is the share of its column's steps whose plan recomputes the unit. The plan of a
// remat_plan.jsonl line written at step p is in force from step p + 1 on.
Heatmap remat_heatmap(const RunData& run) {
  Heatmap map;
  size_t blocks = 0;
  for (const RematPlanLine& p : run.remat_plans) blocks = std::max(blocks, p.dropped.size());
  const auto units = block_units();
  for (size_t l = 0; l < blocks; ++l) {
    for (size_t u = 0; u < units.size(); ++u) {
      map.row_labels.push_back(fmt::format("h.{} {}", l, act_name(units[u])));
      map.row_starts_group.push_back(u == 0);
    }
  }
  map.row_labels.push_back("logits");
  map.row_starts_group.push_back(true);
  // Up to the last step trained (a plan made after it never ran), or the last plan's first step.
  const int first = run.remat_plans.front().step + 1;
  int last = first;
  if (!run.steps.empty())
    last = std::max(last, static_cast<int>(number(run.steps.back(), "step")));
  else
    last = std::max(last, run.remat_plans.back().step + 1);
  const size_t steps = last - first + 1, columns = std::min(steps, kHeatmapColumns);
  auto column_begin = [&](size_t c) { return first + static_cast<int>(c * steps / columns); };
  map.cells.assign(map.row_labels.size(), std::vector<float>(columns, 0));
  for (size_t c = 0; c < columns; ++c) map.column_x.push_back(column_begin(c));
  map.x_end = last;
  std::map<std::string, size_t> unit_row;
  for (size_t u = 0; u < units.size(); ++u) unit_row[act_name(units[u])] = u;
  for (size_t k = 0; k < run.remat_plans.size(); ++k) {
    const RematPlanLine& plan = run.remat_plans[k];
    const int from = plan.step + 1, to = k + 1 < run.remat_plans.size() ? run.remat_plans[k + 1].step : last;
    for (size_t c = 0; c < columns; ++c) {
      const int begin = std::max(from, column_begin(c)), end = std::min(to + 1, column_begin(c + 1));
      if (end <= begin) continue;
      const float share = static_cast<float>(end - begin) / (column_begin(c + 1) - column_begin(c));
      for (size_t l = 0; l < plan.dropped.size(); ++l) {
        for (const std::string& unit : plan.dropped[l]) {
          auto it = unit_row.find(unit);
          if (it != unit_row.end()) map.cells[l * units.size() + it->second][c] += share;
        }
      }
      if (plan.logits_recomputed) map.cells.back()[c] += share;
    }
  }
  return map;
}

std::optional<Section> remat_section(const std::vector<RunData>& runs) {
  std::string html;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunData& run = runs[i];
    if (run.remat_plans.empty()) continue;
    std::map<std::string, int> why;
    std::set<std::string> planners;
    for (const RematPlanLine& p : run.remat_plans) {
      ++why[p.why.empty() ? "?" : p.why];
      planners.insert(p.planner);
    }
    std::vector<std::string> reasons;
    for (const auto& [w, n] : why) reasons.push_back(fmt::format("{} × {}", n, escape_xml(w)));
    std::vector<std::string> planner_names;
    for (const std::string& p : planners) planner_names.push_back(escape_xml(p));
    html += fmt::format("<h3>{}</h3><p>Planner {}; {} plan(s) in force ({}).</p>", run_tag(runs, i),
                        fmt::join(planner_names, ", "), run.remat_plans.size(), fmt::join(reasons, ", ")) +
            svg_heatmap(remat_heatmap(run));
  }
  if (html.empty()) return std::nullopt;
  return Section{"remat", "Rematerialization decisions",
                 "<p>Which activation units each step kept for the backward and which it dropped and "
                 "recomputed (from <code>remat_plan.jsonl</code>; the paper's Fig. 2): rows are units, block "
                 "by block, columns steps.</p>" +
                     html};
}

std::optional<Section> comm_section(const std::vector<RunData>& runs) {
  if (!has_field(runs, "bytes_sent")) return std::nullopt;
  LinePlot plot;
  plot.y_from_zero = true;
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < runs.size(); ++i) {
    struct Totals {
      size_t steps = 0;
      double bytes = 0, comm_ms = 0, hidden = 0;
    };
    std::map<std::string, Totals> by_codec;
    for (const json& r : runs[i].steps) {
      if (!r.contains("bytes_sent")) continue;
      Totals& t = by_codec[r.value("codec", "?")];
      ++t.steps;
      t.bytes += std::isfinite(number(r, "bytes_sent")) ? number(r, "bytes_sent") : 0;
      t.comm_ms += std::isfinite(number(r, "comm_ms")) ? number(r, "comm_ms") : 0;
      t.hidden += std::isfinite(number(r, "comm_hidden_fraction")) ? number(r, "comm_hidden_fraction") : 0;
    }
    if (by_codec.empty()) continue;
    const std::string codecs = by_codec.size() == 1 ? by_codec.begin()->first : "";
    plot.series.push_back(series(curve(runs[i].steps, "bytes_sent"), label(runs, i, codecs), run_colour(i)));
    for (const auto& [codec, t] : by_codec) {
      rows.push_back(
          {run_tag(runs, i), "<code>" + escape_xml(codec) + "</code>", std::to_string(t.steps),
           format_bytes(static_cast<size_t>(t.bytes)), format_bytes(static_cast<size_t>(t.bytes / t.steps)),
           fmt::format("{:.1f}", t.comm_ms / t.steps), fmt::format("{:.0f} %", 100 * t.hidden / t.steps)});
    }
  }
  if (plot.series.empty()) return std::nullopt;
  in_byte_units(&plot, "sent per step");
  return Section{
      "comm", "Gradient communication",
      "<p>Bytes rank 0 sent for the gradient average (and ZeRO-1's gather) in each step, by codec; "
      "<code>hidden</code> is the share of the communication time the backward hid.</p>" +
          html_table({"run", "codec", "steps", "bytes sent", "per step", "comm ms / step", "hidden"}, rows) +
          svg_line_plot(plot)};
}

std::optional<Section> privacy_section(const std::vector<RunData>& runs) {
  if (!has_field(runs, "dp_epsilon")) return std::nullopt;
  LinePlot plot;
  plot.y_label = "ε spent";
  plot.y_from_zero = true;
  std::string notes;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Curve eps = curve(runs[i].steps, "dp_epsilon");
    if (eps.empty()) continue;
    plot.series.push_back(series(eps, label(runs, i, "ε"), run_colour(i)));
    const json& last = runs[i].steps.back();
    const json options = runs[i].run.value("options", json::object());
    notes += fmt::format(
        "<li>{}: ε = {} at δ = {} after step {} (noise σ = {}, clip C = {}); on average {} of each batch's "
        "examples were clipped.</li>",
        run_tag(runs, i), format_value(eps.value.back()), format_value(number(last, "dp_delta")),
        format_value(eps.step.back()), format_value(number(options, "dp_noise")),
        format_value(number(options, "dp_clip")),
        fmt::format("{:.0f} %", 100 * mean(curve(runs[i].steps, "dp_clipped").value)));
  }
  return Section{"privacy", "Privacy (DP-SGD)",
                 "<p>The privacy loss ε the RDP accountant has spent after each step (at the run's δ). It "
                 "covers what is computed from the weights, not the training-loss metrics.</p><ul>" +
                     notes + "</ul>" + svg_line_plot(plot)};
}

std::optional<Section> fairness_section(const std::vector<RunData>& runs) {
  std::set<std::string> fields;
  for (const RunData& r : runs) {
    for (const json& e : r.evals) {
      for (const auto& [k, v] : e.items())
        if (k.starts_with("fair_")) fields.insert(k);
    }
  }
  if (fields.empty()) return std::nullopt;
  std::vector<std::string> header{"metric"};
  for (size_t i = 0; i < runs.size(); ++i) header.push_back(run_tag(runs, i) + " (last evaluation)");
  std::vector<std::vector<std::string>> rows;
  std::string plots;
  for (const std::string& field : fields) {
    std::vector<std::string> row{"<code>" + escape_xml(field) + "</code>"};
    LinePlot plot;
    plot.y_label = field;
    size_t most_points = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
      const Curve c = curve(runs[i].evals, field);
      row.push_back(c.empty() ? "" : format_value(c.value.back()));
      if (c.empty()) continue;
      most_points = std::max(most_points, c.step.size());
      plot.series.push_back(series(c, label(runs, i, field), run_colour(i), false, true));
    }
    rows.push_back(std::move(row));
    if (most_points > 1) plots += svg_line_plot(plot);
  }
  return Section{"fairness", "Fairness",
                 "<p>The fairness metrics of each evaluation (<code>fair_*</code> fields of the evaluation "
                 "records).</p>" +
                     html_table(header, rows) + plots};
}

}  // namespace

std::vector<Section> plot_sections(const std::vector<RunData>& runs) {
  std::vector<Section> out;
  for (auto build : {loss_section, throughput_section, step_time_section, memory_section, remat_section,
                     comm_section, privacy_section, fairness_section}) {
    if (std::optional<Section> s = build(runs)) out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace triad::report
