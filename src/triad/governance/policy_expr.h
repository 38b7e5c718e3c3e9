#pragma once
// The parsed form of a policy condition. Private to the policy files: policy_parser.cc builds it,
// policy.cc evaluates it; everyone else holds it only through PolicyCondition (policy.h).

#include <cstddef>
#include <memory>
#include <string>

namespace triad {

enum class ExprOp { kNumber, kMetric, kHistory, kAbs, kNeg, kArith, kCompare, kAnd, kOr, kNot };
enum class HistoryFn { kMin, kMax, kMean, kPrev };

// One node. Which fields mean something depends on `op`:
//   kNumber: number          kMetric: name             kHistory: fn, name (the metric), window
//   kAbs, kNeg, kNot: a      kArith, kCompare, kAnd, kOr: a, b and name (the operator's spelling)
struct PolicyExpr {
  ExprOp op = ExprOp::kNumber;
  double number = 0;
  std::string name;  // metric name, or the operator's spelling
  HistoryFn fn = HistoryFn::kMin;
  size_t window = 0;  // 0: the whole history
  std::unique_ptr<PolicyExpr> a, b;
};

}  // namespace triad
