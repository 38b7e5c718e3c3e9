#include "triad/search/front_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "triad/core/file_io.h"
#include "triad/report/svg_plot.h"

namespace triad::search {

namespace fs = std::filesystem;

std::string energy_note(const std::string& energy_source) {
  if (energy_source == "estimate") return " (energy: estimate)";
  if (energy_source == "rapl") return " (energy: RAPL)";
  return "";
}

namespace {

bool any_estimate(const SearchResult& result) {
  for (const TrialRecord& t : result.trials)
    if (t.energy_source == "estimate") return true;
  return false;
}

std::string number(double v) {
  return fmt::format("{:.5g}", v);
}

}  // namespace

std::string front_markdown(const SearchSpace& space, const SearchOptions& options,
                           const SearchResult& result) {
  size_t failed = 0, infeasible = 0;
  for (const TrialRecord& t : result.trials) {
    failed += t.status != "ok";
    infeasible += t.status == "ok" && !t.feasible;
  }
  std::vector<std::string> constraints;
  for (const Constraint& c : space.constraints) constraints.push_back(c.text);
  std::string md = fmt::format("# Search {}\n\n", options.out_dir);
  md += fmt::format("Space `{}`, algorithm {}, seed {}{}: {} trials ({} failed, {} infeasible).\n\n",
                    options.space_path, options.algorithm, options.seed,
                    options.algorithm == "nsga2" ? fmt::format(", population {}", options.population) : "",
                    result.trials.size(), failed, infeasible);
  md += fmt::format("Objectives (minimised): {}. Reference point: [{}]. Constraints: {}.\n\n",
                    fmt::join(space.objectives, ", "), fmt::join(space.reference, ", "),
                    constraints.empty() ? "none" : fmt::format("{}", fmt::join(constraints, "; ")));
  md += fmt::format("**Hypervolume** at the reference point: **{}**\n\n", number(result.hypervolume));
  if (any_estimate(result))
    md +=
        "Energy and CO2 are **estimates** (no RAPL counters: CPU time x watts per core + memory power; "
        "docs/energy.md), not measurements.\n\n";

  md += fmt::format("## Pareto front ({} trials)\n\n| trial |", result.front.size());
  for (const std::string& o : space.objectives) md += fmt::format(" {} |", o);
  md += " command |\n|---|";
  for (size_t i = 0; i < space.objectives.size(); ++i) md += "---|";
  md += "---|\n";
  std::vector<size_t> front = result.front;
  std::sort(front.begin(), front.end(),
            [&](size_t a, size_t b) { return result.trials[a].fitness < result.trials[b].fitness; });
  for (size_t i : front) {
    const TrialRecord& t = result.trials[i];
    md += fmt::format("| {} |", t.trial);
    for (const std::string& o : space.objectives)
      md += fmt::format(" {}{} |", number(t.metrics.at(o)),
                        o == "energy_j" || o == "co2_g" ? energy_note(t.energy_source) : "");
    md += fmt::format(" `{}` |\n", t.command);
  }

  md += "\n## Hypervolume after each trial\n\n| trials | hypervolume |\n|---|---|\n";
  for (size_t i = 0; i < result.trials.size(); ++i)
    md += fmt::format("| {} | {} |\n", i + 1, number(result.trials[i].hypervolume));

  if (failed + infeasible > 0) {
    md += "\n## Failed and infeasible trials\n\n| trial | status | why | command |\n|---|---|---|---|\n";
    for (const TrialRecord& t : result.trials) {
      if (t.feasible) continue;
      std::string why = t.error;
      if (t.status == "ok") {
        std::vector<std::string> broken;
        for (const Constraint& c : space.constraints) {
          const double v = t.metrics.at(c.metric);
          if (c.violation(v) > 0) broken.push_back(fmt::format("{} ({} = {})", c.text, c.metric, number(v)));
        }
        why = fmt::format("violates {}", fmt::join(broken, ", "));
      }
      std::replace(why.begin(), why.end(), '|', '/');
      md += fmt::format("| {} | {} | {} | `{}` |\n", t.trial, t.status == "ok" ? "infeasible" : "failed", why,
                        t.command);
    }
  }
  return md;
}

std::string front_svg(const SearchSpace& space, const SearchResult& result) {
  const size_t k = space.objectives.size();
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t i = 0; i < k; ++i)
    for (size_t j = i + 1; j < k; ++j) pairs.emplace_back(i, j);
  if (pairs.empty()) pairs.emplace_back(0, 0);  // one objective: its values against themselves
  const double W = 380, H = 320, left = 70, right = 20, top = 30, bottom = 50;
  const size_t columns = std::min<size_t>(pairs.size(), 3), rows = (pairs.size() + columns - 1) / columns;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W * columns, H * rows, W * columns, H * rows);
  const std::set<size_t> front(result.front.begin(), result.front.end());
  for (size_t p = 0; p < pairs.size(); ++p) {
    const auto [a, b] = pairs[p];
    const double x0 = W * (p % columns), y0 = H * (p / columns);
    // The axes cover every trial that ran to the end (infeasible ones too: they show what a constraint cut).
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (const TrialRecord& t : result.trials) {
      if (t.status != "ok") continue;
      xmin = std::min(xmin, t.metrics.at(space.objectives[a]));
      xmax = std::max(xmax, t.metrics.at(space.objectives[a]));
      ymin = std::min(ymin, t.metrics.at(space.objectives[b]));
      ymax = std::max(ymax, t.metrics.at(space.objectives[b]));
    }
    if (xmin > xmax) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    if (xmax - xmin < 1e-12) xmin -= 0.5, xmax += 0.5;
    if (ymax - ymin < 1e-12) ymin -= 0.5, ymax += 0.5;
    const double pw = W - left - right, ph = H - top - bottom;
    auto sx = [&](double v) { return x0 + left + 10 + (v - xmin) / (xmax - xmin) * (pw - 20); };
    auto sy = [&](double v) { return y0 + top + ph - 10 - (v - ymin) / (ymax - ymin) * (ph - 20); };
    const std::string xname = report::escape_xml(space.objectives[a]),
                      yname = report::escape_xml(space.objectives[b]);
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n",
                       x0 + left, y0 + top, pw, ph);
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x0 + left + pw / 2,
                       y0 + H - 12, xname);
    svg += fmt::format("<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                       x0 + 14, y0 + top + ph / 2, yname);
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", x0 + left,
        y0 + top + ph + 14, number(xmin), x0 + left + pw, y0 + top + ph + 14, number(xmax));
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" "
        "text-anchor=\"end\">{}</text>\n",
        x0 + left - 4, y0 + top + ph, number(ymin), x0 + left - 4, y0 + top + 10, number(ymax));
    std::vector<std::pair<double, double>> staircase;
    for (size_t i = 0; i < result.trials.size(); ++i) {
      const TrialRecord& t = result.trials[i];
      if (t.status != "ok") continue;
      const double x = sx(t.metrics.at(space.objectives[a])), y = sy(t.metrics.at(space.objectives[b]));
      if (!t.feasible) {
        svg += fmt::format(
            "<path d=\"M{} {}l6 6m0 -6l-6 6\" stroke=\"#e67e22\" stroke-width=\"1.5\"><title>trial {} "
            "(infeasible)</title></path>\n",
            x - 3, y - 3, t.trial);
      } else if (front.count(i)) {
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"#c0392b\"><title>trial {} (front)"
            "</title></circle><text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#c0392b\">{}</text>\n",
            x, y, t.trial, x + 6, y - 6, t.trial);
        staircase.emplace_back(x, y);
      } else {
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"#999\"><title>trial {}</title>"
            "</circle>\n",
            x, y, t.trial);
      }
    }
    if (k == 2 && staircase.size() > 1) {  // the front as the boundary of what it dominates
      std::sort(staircase.begin(), staircase.end());
      std::string d = fmt::format("M{:.1f} {:.1f}", staircase[0].first, staircase[0].second);
      for (size_t i = 1; i < staircase.size(); ++i)
        d += fmt::format(" H{:.1f} V{:.1f}", staircase[i].first, staircase[i].second);
      svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\"/>\n", d);
    }
  }
  svg += fmt::format(
      "<text x=\"8\" y=\"16\">front: red ({}), other feasible trials: grey, infeasible: orange x"
      "</text>\n</svg>\n",
      result.front.size());
  return svg;
}

void write_front_report(const std::string& dir, const SearchSpace& space, const SearchOptions& options,
                        const SearchResult& result) {
  write_file_atomic((fs::path(dir) / "front.md").string(), front_markdown(space, options, result));
  write_file_atomic((fs::path(dir) / "front.svg").string(), front_svg(space, result));
}

}  // namespace triad::search
