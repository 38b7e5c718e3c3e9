#pragma once
// `triad classify`: fine-tune a binary classifier on a trained LM's trunk (fairness/classifier.h), with the
// mitigations of fairness/debias.h as flags, watching accuracy and the fairness metrics on a held-out set
// at each evaluation (metrics.jsonl, the audit log, --policy rules), and writing a classifier run
// (fairness/classifier_run.h).
//
// One step: a batch of examples (shuffled, an epoch at a time) →
//   1. the classifier's logits z; the task loss Σ w_i BCE(z_i, y_i) / Σ w_i (w: reweighing, else 1)
//   2. each adversary (one per protected attribute) reads features of z (or the pooled representation),
//      predicts the attribute's group, and is updated to do so better (AdamW on its own parameters)
//   3. the classifier's gradient: the task's, minus λ times the adversaries' (gradient reversal), or with
//      the part that helps the adversaries projected out first (--debias-update projection: a second
//      forward and backward, the two gradients combined in parameter space)
//   4. AdamW on trunk and head; the learning rate warms up linearly, then decays linearly to 0.

#include <string>
#include <vector>

#include "triad/fairness/labelled_data.h"

namespace triad::fairness {

struct FineTuneOptions {
  std::string init;                // an LM run or checkpoint: the trunk's weights, shape and tokenizer
  bool reinit = false;             // random trunk weights (train from scratch), the checkpoint's shape
  std::vector<std::string> train;  // labelled files (several are concatenated: --train data --train augment)
  std::string val;                 // held-out labelled file for the evaluations ("" = none)
  LabelledFormat format;
  std::string out;
  bool force = false;
  int seq_len = 0,  // 0: 64 or the model's context if shorter
      batch = 32, steps = 300, warmup = 30, eval_every = 100, threads = 0;
  double lr = 1e-4, weight_decay = 0.01;
  uint64_t seed = 1;
  std::string pool = "mean";
  // Mitigations.
  bool reweigh = false;
  std::string adversary = "none";          // none | parity | odds
  std::string adversary_input = "output";  // output | pooled | both
  std::string debias_update = "reversal";  // reversal | projection
  double lambda = 1.0, adversary_lr = 1e-3;
  int lambda_warmup = 0;
  std::vector<std::string> protect;  // attributes with an adversary / reweighing; empty: all in the data
  // Governance.
  std::string policy;
};

// Throws a usage error for inconsistent options before any work.
void validate(const FineTuneOptions& options);
// Runs the fine-tuning; returns the process exit code (0, or 3 when a policy halted it).
int fine_tune(const FineTuneOptions& options);

}  // namespace triad::fairness
