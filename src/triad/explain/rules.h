#pragma once
// The symbolic side of explanations (the paper's rule engine, §4.6.1, Eq. 15, Algorithm 3), in two parts.
//
// Global rules, mined over a dataset labelled by the model's own predictions:
//   IF word w appears THEN label y          IF words w AND v appear THEN label y   (with `conjunctions`)
// kept when it fires on at least `min_support` texts and the model says y on at least `min_precision` of
// them; a conjunction also only when its precision beats each of its words' alone by `min_gain` (else it
// says nothing the single rules do not). Pairs are counted among the words frequent enough to be rules,
// the first `max_pair_words` of them per text. A rule's precision and coverage (the share of texts it fires
// on) are re-measured on held-out texts. The rules, ordered by precision (then support), form a decision list
// — the first rule whose word is in a text decides, else the majority label — a surrogate of the model whose
// agreement with it on held-out texts is its fidelity.
//
// Per input (Eq. 15): each word w gets ψ(w) = ρ(w) + a(w), where a(w) is the share of the last block's
// attention the pooled positions pay to w's pieces (Algorithm 3's "top-k token influence") and ρ(w) the
// learned rule importance: log(precision / base rate of y) of the most precise rule for the explained
// label y that holds w and fires on the text (minus that of one for the other label; 0 without a rule).
// Relevance R(w) = softmax over the eligible words of ψ; the top-k words become clauses "IF w THEN y". Words
// that are not reasons (punctuation) get no relevance.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace triad::explain {

struct Rule {
  std::string word;  // normalised (words.h)
  std::string also;  // a conjunction's second word (after `word` in byte order); empty for one word
  int label = 0;
  int64_t support = 0;  // texts it fires on (mining set)
  int64_t hits = 0;     // of those, the model said `label`
  double precision() const { return support ? static_cast<double>(hits) / support : 0.0; }
  // Measured on held-out texts (evaluate_rules); -1 until then.
  int64_t held_out_support = -1;
  double held_out_precision = -1, held_out_coverage = -1;

  bool fires(const std::set<std::string>& words) const {
    return words.count(word) && (also.empty() || words.count(also));
  }
  bool holds(const std::string& w) const { return w == word || w == also; }
  // "w" or "w" AND "v", quoted.
  std::string condition() const;
};

struct MiningOptions {
  int64_t min_support = 5;
  double min_precision = 0.8;
  size_t max_rules = 200;
  bool conjunctions = false;
  double min_gain = 0.05;
  size_t max_pair_words = 100;
};

struct RuleSet {
  std::vector<Rule> rules;  // the decision list's order
  int default_label = 0;
  double base_rate[2] = {0.5, 0.5};  // share of the mining texts the model gives each label
  int64_t texts = 0;
  double fidelity = -1;  // on held-out texts (evaluate_rules)

  int predict(const std::set<std::string>& words) const;
  // ρ(w) toward `label` in a text of these words (see above).
  double importance(const std::string& word, int label, const std::set<std::string>& text) const;
  // The most precise rule for `label` that holds `word` and fires on `text`, or null.
  const Rule* find(const std::string& word, int label, const std::set<std::string>& text) const;

  nlohmann::json to_json() const;
  static RuleSet from_json(const nlohmann::json& j, const std::string& where);
};

// Each text as its set of normalised words.
std::set<std::string> word_set(const std::vector<std::string>& words);

RuleSet mine_rules(const std::vector<std::set<std::string>>& texts, const std::vector<int>& labels,
                   const MiningOptions& options = {});

// Fills each rule's held-out figures and the set's fidelity against `labels` (the model's predictions).
void evaluate_rules(RuleSet* rules, const std::vector<std::set<std::string>>& texts,
                    const std::vector<int>& labels);

// ψ per word (above); `attention` is a(w) per word, `normalized` the words' normalised forms. Words flagged
// `not_a_reason` get -inf.
std::vector<double> rule_scores(const RuleSet& rules, const std::vector<std::string>& normalized,
                                const std::vector<double>& attention,
                                const std::vector<uint8_t>& not_a_reason, int label);

// softmax over the finite entries of ψ (the others 0).
std::vector<double> relevance(const std::vector<double>& psi);

}  // namespace triad::explain
