#pragma once
// Identity subgroups of a labelled data set: which examples mention each group of each protected attribute
// (e.g. group "gay" of attribute "sexual_orientation", group "muslim" of "religion"). Filled from identity
// columns (the Civil Comments / Jigsaw schema, fractional, >= 0.5 meaning present) or by tagging the text
// with an identity-term list (fairness/labelled_data.h); read by the metrics (fairness/metrics.h), the
// reweighing and the adversaries.

#include <cstdint>
#include <string>
#include <vector>

namespace triad::fairness {

struct Subgroup {
  std::string name;             // "gay"
  std::string attribute;        // "sexual_orientation"
  std::vector<uint8_t> member;  // per example: 1 when the example mentions this group
};

}  // namespace triad::fairness
