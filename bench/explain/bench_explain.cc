// The explanation benchmark (issue 18; docs/explain.md): every method on the same texts of a classifier run,
// scored by ERASER's metrics.
//
//   bench_explain --model RUN --data FILE.csv [--words DIR] [--rules RULES.json] [--limit N] [--methods LIST]
//
// With --words (../shared/data/conversationai/madlibs_words), a word of the negative or positive adjective
// and verb lists is the sentence's rationale (in Dixon et al.'s madlibs it decides the label) and each
// method's top-k words (k = the rationale's length) are matched against it: token F1, IOU-F1, AUPRC; and
// the identity terms (adjectives_people.txt) are counted among each method's top word. Always:
// comprehensiveness and sufficiency (AOPC over 1, 5, 10, 20, 50 %) and explanations per second.

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/explain/explainer.h"
#include "triad/fairness/labelled_data.h"

using namespace triad;
using namespace triad::explain;

namespace {

std::set<std::string> read_words(const std::string& dir, const std::vector<std::string>& files) {
  std::set<std::string> out;
  for (const std::string& f : files) {
    std::ifstream in(dir + "/" + f);
    if (!in) fail("{}/{}: cannot read", dir, f);
    for (std::string line; std::getline(in, line);) {
      const std::string w = normalize_word(line);
      if (!w.empty()) out.insert(w);
    }
  }
  return out;
}

struct Totals {
  MatchCounts token, iou;
  double ap_sum = 0, comp = 0, suff = 0, seconds = 0;
  int ap_n = 0, n = 0, identity_top = 0, rationale_top = 0;
};

}  // namespace

int main(int argc, char** argv) try {
  std::string model, data, words_dir, rules_path, methods = "all";
  size_t limit = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model")
      model = value;
    else if (flag == "--data")
      data = value;
    else if (flag == "--words")
      words_dir = value;
    else if (flag == "--rules")
      rules_path = value;
    else if (flag == "--limit")
      limit = std::stoul(value);
    else if (flag == "--methods")
      methods = value;
    else
      fail_usage("unknown flag {} (see the comment at the top of bench/explain/bench_explain.cc)", flag);
  }
  if (model.empty() || data.empty()) fail_usage("give --model RUN and --data FILE.csv");
  ExplainOptions options;
  options.faithfulness = true;
  options.methods.clear();
  if (methods == "all") {
    for (Method m : all_methods()) options.methods.push_back(method_name(m));
    options.methods.push_back(kRuleMethod);
  } else {
    for (size_t s = 0; s <= methods.size();) {
      const size_t e = std::min(methods.find(',', s), methods.size());
      options.methods.push_back(methods.substr(s, e - s));
      s = e + 1;
    }
  }
  RuleSet rules;
  if (!rules_path.empty()) {
    rules = RuleSet::from_json(read_json_file(rules_path), rules_path);
    options.rules = &rules;
  }
  std::set<std::string> rationale_words, identity_words;
  if (!words_dir.empty()) {
    rationale_words = read_words(words_dir, {"adjectives_negative.txt", "adjectives_positive.txt",
                                             "verbs_negative.txt", "verbs_positive.txt"});
    identity_words = read_words(words_dir, {"adjectives_people.txt"});
  }
  fairness::LabelledFormat format;
  format.label_field = "none";
  const fairness::LabelledSet set = fairness::read_labelled(data, format);
  const std::unique_ptr<Probe> probe = open_classifier(model);
  std::map<std::string, Totals> totals;
  size_t explained = 0;
  for (size_t i = 0; i < set.size() && explained < limit; ++i) {
    const Explanation e = explain_text(*probe, set.ids[i], set.texts[i], options);
    std::vector<uint8_t> rationale(e.words.size(), 0);
    int identity_positions = 0;
    for (size_t w = 0; w < e.words.size(); ++w) {
      const std::string n = normalize_word(e.words.text[w]);
      rationale[w] = rationale_words.count(n) ? 1 : 0;
      identity_positions += identity_words.count(n) ? 1 : 0;
    }
    ++explained;
    for (const MethodScores& m : e.methods) {
      Totals& t = totals[m.method];
      ++t.n;
      t.seconds += m.seconds;
      t.comp += m.faithfulness.aopc_comprehensiveness();
      t.suff += m.faithfulness.aopc_sufficiency();
      std::vector<double> finite = m.scores;
      for (double& s : finite) {
        if (!std::isfinite(s)) s = -1e300;
      }
      size_t top = 0;
      for (size_t w = 1; w < finite.size(); ++w) {
        if (finite[w] > finite[top]) top = w;
      }
      if (identity_positions > 0)
        t.identity_top += identity_words.count(normalize_word(e.words.text[top])) ? 1 : 0;
      if (!words_dir.empty()) {
        const RationaleMatch match = match_top_k(rationale, finite);
        t.token += match.token;
        t.iou += match.iou;
        t.rationale_top += rationale[top];
        const double ap = average_precision(rationale, finite);
        if (std::isfinite(ap)) {
          t.ap_sum += ap;
          ++t.ap_n;
        }
      }
    }
  }
  fmt::print("{} texts of {} explained by {}\n\n", explained, data, model);
  fmt::print(
      "| method | token F1 | IOU F1 | AUPRC | top word is the rationale | top word is an identity term | "
      "comprehensiveness | sufficiency | explanations/s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | "
      "---: | ---: |\n");
  for (const std::string& name : options.methods) {
    const Totals& t = totals[name];
    if (t.n == 0) continue;
    const bool rationales = !words_dir.empty();
    fmt::print("| {} | {} | {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.0f} |\n", name,
               rationales ? fmt::format("{:.3f}", t.token.f1()) : "–",
               rationales ? fmt::format("{:.3f}", t.iou.f1()) : "–",
               rationales && t.ap_n ? fmt::format("{:.3f}", t.ap_sum / t.ap_n) : "–",
               rationales ? fmt::format("{:.3f}", static_cast<double>(t.rationale_top) / t.n) : "–",
               static_cast<double>(t.identity_top) / t.n, t.comp / t.n, t.suff / t.n, t.n / t.seconds);
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_explain: {}\n", e.what());
  return 1;
}
