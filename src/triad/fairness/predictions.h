#pragma once
// The predictions file: what `triad predict` writes and `triad fairness` reads. JSONL, one example a line:
//
//   {"id": "file.csv:12", "label": 1, "score": 0.93, "identities": {"sexual_orientation": ["gay"],
//   "religion": []}}
//
// id: a string, unique in the file (where the example came from). label: 0 or 1; absent or null when
// unknown (then only the positive rate, a score-only metric, can use the example). score: the probability
// of the positive class, a number in [0, 1]. identities: per protected attribute, the groups the example
// mentions (an empty list: none); absent means none. Other fields are ignored. Blank lines are skipped.
// The writer lists every attribute on every line; a group that no example mentions cannot be told apart
// from no group at all, so the reader knows only groups with at least one member.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "triad/fairness/metrics.h"
#include "triad/fairness/subgroups.h"

namespace triad::fairness {

struct Predictions {
  std::vector<std::string> ids;
  std::vector<int8_t> labels;  // 1, 0 or kNoLabel, one per example
  std::vector<double> scores;
  std::vector<Subgroup> subgroups;  // sorted by attribute, then group name
};

// Writes the file atomically (temporary name, fsync, rename). `labels` is empty (all unknown) or one per
// example; each subgroup has one member flag per example. Sizes that disagree, a score outside [0, 1] or a
// label other than 0, 1 and kNoLabel are errors.
void write_predictions(const std::string& path, std::span<const std::string> ids,
                       std::span<const int8_t> labels, std::span<const double> scores,
                       const std::vector<Subgroup>& subgroups);
inline void write_predictions(const std::string& path, const Predictions& p) {
  write_predictions(path, p.ids, p.labels, p.scores, p.subgroups);
}

// Reads a predictions file. A malformed line fails naming the file, the line and the field:
// "preds.jsonl:12: field 'score': expected a number in [0, 1], got 1.5".
Predictions read_predictions(const std::string& path);

}  // namespace triad::fairness
