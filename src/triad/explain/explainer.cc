#include "triad/explain/explainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/rng.h"

namespace triad::explain {

namespace {

std::vector<std::string> normalized_words(const Words& words) {
  std::vector<std::string> out;
  for (const std::string& w : words.text) out.push_back(normalize_word(w));
  return out;
}

// Scores of words that are no reason never reach the top: -inf for every method.
void mask_non_reasons(const Words& words, std::vector<double>* scores) {
  for (size_t w = 0; w < words.size(); ++w) {
    if (words.not_a_reason[w]) (*scores)[w] = -std::numeric_limits<double>::infinity();
  }
}

// Word indices by descending score, non-reasons left out.
std::vector<size_t> ranked(const std::vector<double>& scores) {
  std::vector<size_t> order;
  for (size_t w = 0; w < scores.size(); ++w) {
    if (std::isfinite(scores[w])) order.push_back(w);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

// Scores with null for a word that is no reason.
nlohmann::json scores_json(const std::vector<double>& scores) {
  nlohmann::json out = nlohmann::json::array();
  for (double s : scores) out.push_back(std::isfinite(s) ? nlohmann::json(s) : nlohmann::json(nullptr));
  return out;
}

}  // namespace

void check_methods(const std::vector<std::string>& methods) {
  if (methods.empty()) fail_usage("--methods: give at least one method");
  for (const std::string& m : methods) {
    if (m != kRuleMethod) parse_method(m);
  }
}

Explanation explain_text(Probe& probe, const std::string& id, const std::string& text,
                         const ExplainOptions& options) {
  Explanation e;
  e.id = id;
  e.text = text;
  e.words = split_words(probe.tokenizer(), text, probe.seq_len());
  if (e.words.size() == 0) fail("{}: nothing to explain: the text has no words", id);
  e.outcome = probe.fix_outcome(e.words.tokens);
  const int label = e.outcome.label;
  const std::vector<uint8_t> always_keep;  // every word may be removed, punctuation too
  for (const std::string& name : options.methods) {
    MethodScores m;
    m.method = name;
    const auto start = std::chrono::steady_clock::now();
    if (name == kRuleMethod) {
      const RuleSet none;
      const RuleSet& rules = options.rules ? *options.rules : none;
      const std::vector<double> attention = e.words.word_scores(last_block_attention(probe, e.words.tokens));
      const std::vector<std::string> normalized = normalized_words(e.words);
      const std::set<std::string> text = word_set(normalized);
      m.scores = rule_scores(rules, normalized, attention, e.words.not_a_reason, label);
      const std::vector<double> R = relevance(m.scores);
      for (size_t w : ranked(m.scores)) {
        if (static_cast<int>(e.clauses.size()) == options.top) break;
        e.clauses.push_back({normalized[w], R[w], rules.find(normalized[w], label, text)});
      }
    } else if (name == method_name(Method::kAttention)) {
      // Head by head from one forward; the method's scores are their mean (scores are linear in attention).
      m.heads = last_block_attention_heads(probe, e.words);
      m.scores.assign(e.words.size(), 0.0);
      for (const std::vector<double>& head : m.heads) {
        for (size_t w = 0; w < head.size(); ++w) m.scores[w] += head[w] / m.heads.size();
      }
    } else {
      m.scores = explain_words(probe, e.words, parse_method(name), label, options.method);
    }
    m.seconds = seconds_since(start);
    mask_non_reasons(e.words, &m.scores);
    for (std::vector<double>& head : m.heads) mask_non_reasons(e.words, &head);
    if (options.faithfulness) {
      // Non-reasons rank last (the lowest finite score) so that they are removed only after every word.
      std::vector<double> finite = m.scores;
      for (double& s : finite) {
        if (!std::isfinite(s)) s = -1e300;
      }
      m.faithfulness = faithfulness(finite, keep_mask_model(probe, e.words, label));
      m.has_faithfulness = true;
    }
    e.methods.push_back(std::move(m));
  }
  return e;
}

nlohmann::json to_json(const Explanation& e) {
  nlohmann::json methods = nlohmann::json::object();
  for (const MethodScores& m : e.methods) {
    nlohmann::json j = {{"scores", scores_json(m.scores)}, {"seconds", m.seconds}};
    if (!m.heads.empty()) {
      j["heads"] = nlohmann::json::array();
      for (const std::vector<double>& head : m.heads) j["heads"].push_back(scores_json(head));
    }
    if (m.has_faithfulness) {
      j["comprehensiveness"] = m.faithfulness.aopc_comprehensiveness();
      j["sufficiency"] = m.faithfulness.aopc_sufficiency();
    }
    methods[m.method] = j;
  }
  nlohmann::json clauses = nlohmann::json::array();
  for (const Clause& c : e.clauses) {
    nlohmann::json j = {{"if", c.word}, {"then", e.outcome.name}, {"relevance", c.relevance}};
    if (c.rule && !c.rule->also.empty()) j["and"] = c.word == c.rule->word ? c.rule->also : c.rule->word;
    if (c.rule) {
      j["rule"] = {{"support", c.rule->support}, {"precision", c.rule->precision()}};
    }
    clauses.push_back(j);
  }
  return {{"id", e.id},
          {"text", e.text},
          {"words", e.words.text},
          {"label", e.outcome.label},
          {"outcome", e.outcome.name},
          {"probability", e.outcome.probability},
          {"methods", methods},
          {"clauses", clauses}};
}

std::string format_explanation(const Explanation& e, int top) {
  std::string out = fmt::format("{}: predicted {} (p = {:.3f})\n  {}\n", e.id, e.outcome.name,
                                e.outcome.probability, e.text);
  for (const MethodScores& m : e.methods) {
    out += fmt::format("  {:<14}", m.method);
    int shown = 0;
    for (size_t w : ranked(m.scores)) {
      if (shown++ == top) break;
      out += fmt::format(" {} {:+.3g}", e.words.text[w], m.scores[w]);
    }
    if (m.has_faithfulness) {
      out += fmt::format("   [comp {:.3f} suff {:.3f}]", m.faithfulness.aopc_comprehensiveness(),
                         m.faithfulness.aopc_sufficiency());
    }
    out += fmt::format("   ({:.1f} ms)\n", m.seconds * 1e3);
  }
  for (const Clause& c : e.clauses) {
    out += fmt::format("  IF {} THEN {}   R = {:.2f}", c.condition(), e.outcome.name, c.relevance);
    if (c.rule) {
      out += fmt::format("   (rule: precision {:.2f} on {} texts)", c.rule->precision(), c.rule->support);
    }
    out += "\n";
  }
  return out;
}

RuleSet mine_from_texts(Probe& probe, const std::vector<std::string>& texts, double held_out,
                        const MiningOptions& options, uint64_t seed) {
  if (!(held_out >= 0 && held_out < 1)) fail_usage("--held-out must be in [0, 1), not {}", held_out);
  std::vector<std::set<std::string>> sets;
  std::vector<std::vector<int32_t>> inputs;
  for (const std::string& text : texts) {
    const Words words = split_words(probe.tokenizer(), text, probe.seq_len());
    sets.push_back(word_set(normalized_words(words)));
    inputs.push_back(words.tokens);
  }
  const std::vector<double> z = probe.logits(inputs);
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[static_cast<size_t>(rng.uniform() * i)]);
  const size_t mine_count = texts.size() - static_cast<size_t>(held_out * texts.size());
  std::vector<std::set<std::string>> mine_sets, test_sets;
  std::vector<int> mine_labels, test_labels;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    (k < mine_count ? mine_sets : test_sets).push_back(sets[i]);
    (k < mine_count ? mine_labels : test_labels).push_back(probe.probability(z[i], 1) >= 0.5 ? 1 : 0);
  }
  RuleSet rules = mine_rules(mine_sets, mine_labels, options);
  if (!test_sets.empty()) evaluate_rules(&rules, test_sets, test_labels);
  return rules;
}

}  // namespace triad::explain
