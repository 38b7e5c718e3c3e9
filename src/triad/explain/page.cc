#include "triad/explain/page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "triad/report/svg_plot.h"

namespace triad::explain {

namespace {

using report::escape_xml;

constexpr const char* kStyle = R"(body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}
h2{font-size:1.1em;margin-top:2em}table{border-collapse:collapse;margin:.5em 0}
td,th{padding:.25em .6em;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}
.w{padding:.1em .2em;border-radius:.2em;margin-right:.15em;display:inline-block}
.m{font-family:monospace;color:#555;white-space:nowrap}.clause{font-family:monospace}
.note{color:#666;font-size:.9em})";

std::string shade(double score, double scale) {
  if (!std::isfinite(score) || scale <= 0) return "transparent";
  const double a = std::min(1.0, std::abs(score) / scale);
  return score >= 0 ? fmt::format("rgba(220,50,47,{:.3f})", a) : fmt::format("rgba(38,139,210,{:.3f})", a);
}

std::string method_row(const Explanation& e, const MethodScores& m) {
  double scale = 0;
  for (double s : m.scores) {
    if (std::isfinite(s)) scale = std::max(scale, std::abs(s));
  }
  std::string row = fmt::format("<tr><td class=\"m\">{}</td><td>", escape_xml(m.method));
  for (size_t w = 0; w < e.words.size(); ++w) {
    const double s = m.scores[w];
    row += fmt::format(
        "<span class=\"w\" data-method=\"{}\" data-word=\"{}\" data-score=\"{}\" style=\"background:{}\" "
        "title=\"{}\">{}</span>",
        escape_xml(m.method), w, std::isfinite(s) ? fmt::format("{:.6g}", s) : "", shade(s, scale),
        std::isfinite(s) ? fmt::format("{:.4g}", s) : "not a reason", escape_xml(e.words.text[w]));
  }
  row += fmt::format("</td><td class=\"m\">{:.1f} ms", m.seconds * 1e3);
  if (m.has_faithfulness) {
    row += fmt::format("<br>comp {:.3f} · suff {:.3f}", m.faithfulness.aopc_comprehensiveness(),
                       m.faithfulness.aopc_sufficiency());
  }
  return row + "</td></tr>\n";
}

std::string rules_table(const RuleSet& rules) {
  std::string out = "<h2>Mined rules</h2>\n<p class=\"note\">";
  out += fmt::format("{} rules from {} texts labelled by the classifier", rules.rules.size(), rules.texts);
  if (rules.fidelity >= 0)
    out += fmt::format("; as a decision list they agree with it on {:.1f} % of held-out texts",
                       100 * rules.fidelity);
  out +=
      ".</p>\n<table id=\"rules\"><tr><th>rule</th><th>support</th><th>precision</th><th>held-out "
      "precision</th>"
      "<th>held-out coverage</th></tr>\n";
  for (const Rule& r : rules.rules) {
    out += fmt::format(
        "<tr class=\"rule\"><td class=\"clause\">IF {} THEN "
        "{}</td><td>{}</td><td>{:.3f}</td><td>{}</td><td>{}</td></tr>\n",
        escape_xml(r.condition()), r.label, r.support, r.precision(),
        r.held_out_precision >= 0 ? fmt::format("{:.3f}", r.held_out_precision) : "–",
        r.held_out_coverage >= 0 ? fmt::format("{:.4f}", r.held_out_coverage) : "–");
  }
  return out + "</table>\n";
}

}  // namespace

std::string explanation_page(const std::vector<Explanation>& explanations, const RuleSet* rules,
                             const std::string& title) {
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body>\n"
      "<h1>{}</h1>\n<p class=\"note\">Each word shaded by its score toward the predicted label: red for, "
      "blue against, the strongest word of each row fully shaded. Attention-based rows are unsigned.</p>\n",
      escape_xml(title), kStyle, escape_xml(title));
  for (const Explanation& e : explanations) {
    out += fmt::format(
        "<section class=\"explanation\" data-id=\"{}\"><h2>{} — predicted {} (p = {:.3f})</h2>\n<table>\n",
        escape_xml(e.id), escape_xml(e.id), escape_xml(e.outcome.name), e.outcome.probability);
    for (const MethodScores& m : e.methods) out += method_row(e, m);
    out += "</table>\n";
    for (const Clause& c : e.clauses) {
      out += fmt::format("<div class=\"clause\">IF {} THEN {} &nbsp; R = {:.2f}", escape_xml(c.condition()),
                         escape_xml(e.outcome.name), c.relevance);
      if (c.rule)
        out += fmt::format(" (rule precision {:.2f} on {} texts)", c.rule->precision(), c.rule->support);
      out += "</div>\n";
    }
    out += "</section>\n";
  }
  if (rules && !rules->rules.empty()) out += rules_table(*rules);
  return out + "</body></html>\n";
}

}  // namespace triad::explain
