#include "triad/explain/rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <unordered_map>

#include "triad/core/error.h"

namespace triad::explain {

std::set<std::string> word_set(const std::vector<std::string>& words) {
  std::set<std::string> out;
  for (const std::string& w : words) {
    if (!w.empty()) out.insert(w);
  }
  return out;
}

std::string Rule::condition() const {
  return also.empty() ? fmt::format("\"{}\"", word) : fmt::format("\"{}\" AND \"{}\"", word, also);
}

int RuleSet::predict(const std::set<std::string>& words) const {
  for (const Rule& r : rules) {
    if (r.fires(words)) return r.label;
  }
  return default_label;
}

const Rule* RuleSet::find(const std::string& word, int label, const std::set<std::string>& text) const {
  for (const Rule& r : rules) {  // the decision list's order: the most precise first
    if (r.label == label && r.holds(word) && r.fires(text)) return &r;
  }
  return nullptr;
}

double RuleSet::importance(const std::string& word, int label, const std::set<std::string>& text) const {
  auto lift = [&](int y) {
    const Rule* r = find(word, y, text);
    return r && base_rate[y] > 0 ? std::log(r->precision() / base_rate[y]) : 0.0;
  };
  return lift(label) - lift(1 - label);
}

RuleSet mine_rules(const std::vector<std::set<std::string>>& texts, const std::vector<int>& labels,
                   const MiningOptions& options) {
  if (texts.size() != labels.size()) fail("internal: {} texts and {} labels", texts.size(), labels.size());
  RuleSet out;
  out.texts = static_cast<int64_t>(texts.size());
  std::map<std::string, std::array<int64_t, 2>> counts;  // word -> texts per label
  int64_t per_label[2] = {0, 0};
  for (size_t i = 0; i < texts.size(); ++i) {
    const int y = labels[i] == 1 ? 1 : 0;
    ++per_label[y];
    for (const std::string& w : texts[i]) ++counts[w][y];
  }
  if (out.texts > 0) {
    for (int y = 0; y < 2; ++y) out.base_rate[y] = static_cast<double>(per_label[y]) / out.texts;
  }
  out.default_label = per_label[1] > per_label[0] ? 1 : 0;
  std::vector<const std::string*> frequent;  // words that can be rules, by id
  std::map<std::string, int> frequent_id;
  for (const auto& [word, n] : counts) {
    const int64_t support = n[0] + n[1];
    if (support < options.min_support) continue;
    frequent_id[word] = static_cast<int>(frequent.size());
    frequent.push_back(&word);
    for (int y = 0; y < 2; ++y) {
      Rule r{.word = word, .also = {}, .label = y, .support = support, .hits = n[y]};
      if (r.precision() >= options.min_precision) out.rules.push_back(r);
    }
  }
  if (options.conjunctions) {
    // Pairs (a < b by id, so by byte order) -> texts per label.
    std::unordered_map<uint64_t, std::array<int64_t, 2>> pairs;
    std::vector<int> ids;
    for (size_t i = 0; i < texts.size(); ++i) {
      ids.clear();
      for (const std::string& w : texts[i]) {  // a set: sorted, so ids ascend
        auto it = frequent_id.find(w);
        if (it != frequent_id.end() && ids.size() < options.max_pair_words) ids.push_back(it->second);
      }
      for (size_t a = 0; a < ids.size(); ++a) {
        for (size_t b = a + 1; b < ids.size(); ++b)
          ++pairs[uint64_t(ids[a]) << 32 | uint64_t(ids[b])][labels[i] == 1];
      }
    }
    auto precision = [&](const std::string& w, int y) {
      const std::array<int64_t, 2>& n = counts.at(w);
      return static_cast<double>(n[y]) / (n[0] + n[1]);
    };
    for (const auto& [key, n] : pairs) {
      const int64_t support = n[0] + n[1];
      if (support < options.min_support) continue;
      const std::string &a = *frequent[key >> 32], &b = *frequent[key & 0xffffffffu];
      for (int y = 0; y < 2; ++y) {
        Rule r{.word = a, .also = b, .label = y, .support = support, .hits = n[y]};
        if (r.precision() >= options.min_precision &&
            r.precision() >= std::max(precision(a, y), precision(b, y)) + options.min_gain)
          out.rules.push_back(r);
      }
    }
  }
  std::stable_sort(out.rules.begin(), out.rules.end(), [](const Rule& a, const Rule& b) {
    if (a.precision() != b.precision()) return a.precision() > b.precision();
    if (a.support != b.support) return a.support > b.support;
    return std::tie(a.word, a.also) < std::tie(b.word, b.also);
  });
  if (out.rules.size() > options.max_rules) out.rules.resize(options.max_rules);
  return out;
}

void evaluate_rules(RuleSet* rules, const std::vector<std::set<std::string>>& texts,
                    const std::vector<int>& labels) {
  const size_t n = texts.size();
  int64_t agree = 0;
  for (size_t i = 0; i < n; ++i) agree += rules->predict(texts[i]) == labels[i];
  rules->fidelity = n ? static_cast<double>(agree) / n : -1;
  for (Rule& r : rules->rules) {
    int64_t fired = 0, hits = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!r.fires(texts[i])) continue;
      ++fired;
      hits += labels[i] == r.label;
    }
    r.held_out_support = fired;
    r.held_out_precision = fired ? static_cast<double>(hits) / fired : -1;
    r.held_out_coverage = n ? static_cast<double>(fired) / n : -1;
  }
}

std::vector<double> rule_scores(const RuleSet& rules, const std::vector<std::string>& normalized,
                                const std::vector<double>& attention,
                                const std::vector<uint8_t>& not_a_reason, int label) {
  const std::set<std::string> text = word_set(normalized);
  std::vector<double> out(normalized.size());
  for (size_t w = 0; w < normalized.size(); ++w) {
    out[w] = not_a_reason[w] ? -std::numeric_limits<double>::infinity()
                             : rules.importance(normalized[w], label, text) + attention[w];
  }
  return out;
}

std::vector<double> relevance(const std::vector<double>& psi) {
  double top = -std::numeric_limits<double>::infinity();
  for (double p : psi) top = std::max(top, p);
  std::vector<double> out(psi.size(), 0.0);
  if (!std::isfinite(top)) return out;
  double sum = 0;
  for (size_t i = 0; i < psi.size(); ++i) {
    if (std::isfinite(psi[i])) sum += out[i] = std::exp(psi[i] - top);
  }
  for (double& r : out) r /= sum;
  return out;
}

nlohmann::json RuleSet::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const Rule& r : rules) {
    nlohmann::json j = {{"if", r.word}};
    if (!r.also.empty()) j["and"] = r.also;
    j.update({{"then", r.label}, {"support", r.support}, {"hits", r.hits}, {"precision", r.precision()}});
    if (r.held_out_support >= 0) {
      j["held_out"] = {{"support", r.held_out_support},
                       {"precision", r.held_out_precision},
                       {"coverage", r.held_out_coverage}};
    }
    list.push_back(j);
  }
  nlohmann::json out = {{"format", "triad-rules"},
                        {"texts", texts},
                        {"base_rate", {base_rate[0], base_rate[1]}},
                        {"default", default_label},
                        {"rules", list}};
  if (fidelity >= 0) out["fidelity"] = fidelity;
  return out;
}

RuleSet RuleSet::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("format", "") != "triad-rules")
    fail("{}: not a rule set (\"format\" is not triad-rules; mine one with `triad explain --mine`)", where);
  RuleSet out;
  try {
    out.texts = j.at("texts").get<int64_t>();
    out.base_rate[0] = j.at("base_rate").at(0).get<double>();
    out.base_rate[1] = j.at("base_rate").at(1).get<double>();
    out.default_label = j.at("default").get<int>();
    out.fidelity = j.value("fidelity", -1.0);
    for (const nlohmann::json& r : j.at("rules")) {
      out.rules.push_back({.word = r.at("if").get<std::string>(),
                           .also = r.value("and", ""),
                           .label = r.at("then").get<int>(),
                           .support = r.at("support").get<int64_t>(),
                           .hits = r.at("hits").get<int64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed rule set: {}", where, e.what());
  }
  return out;
}

}  // namespace triad::explain
