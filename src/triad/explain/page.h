#pragma once
// One self-contained HTML page of explanations (no script, no network fetch): per text, the prediction,
// one row per method with each word shaded by its score (red toward the explained label, blue against,
// the strongest word of the row fully shaded; punctuation unshaded), the rule engine's clauses, and the
// mined rule set with precision, coverage and fidelity when there is one. Word elements carry
// data-method, data-word and data-score, so that a test (or a user's script) can read the page back.

#include <string>
#include <vector>

#include "triad/explain/explainer.h"

namespace triad::explain {

std::string explanation_page(const std::vector<Explanation>& explanations, const RuleSet* rules,
                             const std::string& title);

}  // namespace triad::explain
