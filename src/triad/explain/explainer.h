#pragma once
// One text explained by several methods side by side (attributions.h, and "rules": the rule engine of
// rules.h), each with its time and, on request, its faithfulness (eraser.h); and the global rule set mined
// over a dataset. What `triad explain` prints, writes as JSON and shows as HTML (page.h).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/explain/attributions.h"
#include "triad/explain/rules.h"

namespace triad::explain {

inline constexpr const char* kRuleMethod = "rules";

struct MethodScores {
  std::string method;          // a Method's name or "rules"
  std::vector<double> scores;  // per word, toward the explained label; -inf for a word that is no reason
  std::vector<std::vector<double>> heads;  // `attention` only: the scores of each head of the last block
  double seconds = 0;
  bool has_faithfulness = false;
  Faithfulness faithfulness;
};

struct Clause {  // IF word THEN outcome, with the rule engine's relevance R (Eq. 15)
  std::string word;
  double relevance = 0;
  const Rule* rule = nullptr;  // the mined rule behind it, if any
  // "w", or the conjunction of the rule behind it: "w" AND "v".
  std::string condition() const { return rule && !rule->also.empty() ? rule->condition() : '"' + word + '"'; }
};

struct Explanation {
  std::string id, text;
  Words words;
  Outcome outcome;  // what is explained: the classifier's prediction or the language model's next token
  std::vector<MethodScores> methods;
  std::vector<Clause> clauses;  // from the rule engine, when it ran
};

struct ExplainOptions {
  std::vector<std::string> methods = {"attention", "rollout", "grad_input", "ig", "occlusion", "rules"};
  MethodOptions method;
  const RuleSet* rules = nullptr;  // the rule engine without mined rules is attention alone
  int top = 3;                     // clauses and the terminal's top words
  bool faithfulness = false;
};

// Checks method names (usage errors name the bad one).
void check_methods(const std::vector<std::string>& methods);

Explanation explain_text(Probe& probe, const std::string& id, const std::string& text,
                         const ExplainOptions& options);

nlohmann::json to_json(const Explanation& e);
// Terminal view: the prediction, each method's top words with scores, the clauses.
std::string format_explanation(const Explanation& e, int top);

// Rules mined over `texts` labelled by a classifier (not a language model: usage error): the first (1 -
// held_out) of a seeded shuffle mines, the rest measures precision, coverage and fidelity.
RuleSet mine_from_texts(Probe& probe, const std::vector<std::string>& texts, double held_out,
                        const MiningOptions& options, uint64_t seed);

}  // namespace triad::explain
