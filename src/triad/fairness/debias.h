#pragma once
// The mitigations of issue 17, each a pure function of the data or of one batch's numbers, so that the
// fine-tuning loop (fairness/fine_tune.h) reads top to bottom and each rule is tested alone.
//
//   reweighing            Kamiran & Calders: W(s, y) = |S=s| |Y=y| / (N |S=s, Y=y|), s the example's
//                         identity (its protected groups, joined; "" for none)
//   adversary targets     per protected attribute: the index of the group the example mentions, K for
//                         "none of them" (K groups + 1 classes)
//   adversary features    from the classifier's probability s: [s] (demographic parity) or
//                         [s, s·y, s·(1−y)] (equalized odds, Zhang et al. / AIF360); or the pooled
//                         representation ([pool] or [pool, y]); or both ([pool, s] or [pool, s, s·y,
//                         s·(1−y)])
//   combined update       gradient reversal: ∇L_task − λ ∇L_adv; projection (Zhang et al. 2018):
//                         ∇L_task − proj_{∇L_adv} ∇L_task − λ ∇L_adv

#include <string>
#include <vector>

#include "triad/fairness/subgroups.h"

namespace triad::fairness {

enum class AdversaryGoal { kNone, kParity, kOdds };
AdversaryGoal parse_adversary_goal(const std::string& name);  // none | parity | odds
enum class AdversaryInput { kOutput, kPooled, kBoth };
AdversaryInput parse_adversary_input(const std::string& name);  // output | pooled | both
enum class DebiasUpdate { kReversal, kProjection };
DebiasUpdate parse_debias_update(const std::string& name);  // reversal | projection

// The attributes of `subgroups` named in `wanted` (all of them when empty), in order of first appearance;
// a wanted attribute the data lacks is a usage error naming the ones it has.
std::vector<std::string> protected_attributes(const std::vector<Subgroup>& subgroups,
                                              const std::vector<std::string>& wanted);

// Per example, Kamiran & Calders' weight over the identities formed by `attributes`' groups. Weights
// average 1 over the set; a combination that never occurs gets none (nobody has it).
std::vector<double> reweighing_weights(const std::vector<int>& labels, const std::vector<Subgroup>& subgroups,
                                       const std::vector<std::string>& attributes);

// One attribute's groups and each example's class: the first of its groups the example mentions, or
// groups.size() for none.
struct AttributeTargets {
  std::string attribute;
  std::vector<std::string> groups;
  std::vector<int> target;  // per example
  int classes() const { return static_cast<int>(groups.size()) + 1; }
};
AttributeTargets attribute_targets(const std::vector<Subgroup>& subgroups, const std::string& attribute,
                                   size_t examples);

// The adversary's input width for `goal` and `input` (C: the pooled representation's width).
int adversary_inputs(AdversaryGoal goal, AdversaryInput input, int C);
// Features (N, width) from probabilities s (N), labels y (N) and, for kPooled and kBoth, pooled (N, C).
std::vector<float> adversary_features(AdversaryGoal goal, AdversaryInput input, const std::vector<float>& s,
                                      const std::vector<int>& y, const float* pooled, int C);
// The gradient the features' gradient dx (N, width) sends back: into dlogit (N) through s = σ(z)
// (kOutput, kBoth) and into dpooled (N, C) (kPooled, kBoth); both accumulate.
void adversary_feature_backward(AdversaryGoal goal, AdversaryInput input, const std::vector<float>& dx,
                                const std::vector<float>& s, const std::vector<int>& y, int C,
                                std::vector<float>* dlogit, std::vector<float>* dpooled);

// In place: task = task − (task·adv / |adv|²) adv − λ adv (the projection is skipped when |adv| = 0).
// Dot products in double. Returns the cosine between the two gradients before the update.
double project_out(std::vector<float>* task, const std::vector<float>& adv, double lambda);

// λ at `step` (from 1): rising linearly from 0 over `warmup` steps, then constant.
double lambda_at(int step, double lambda, int warmup);

}  // namespace triad::fairness
