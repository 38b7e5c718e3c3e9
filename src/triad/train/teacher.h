#pragma once
// The teacher of knowledge distillation (`triad train --teacher RUN_OR_CHECKPOINT`): a trained checkpoint run
// forward only, no gradients, on each micro-batch the student trains on. Its embedding and blocks run as a
// Gpt without the head; its final LayerNorm is applied here, so that the soft targets are the final hidden
// state (N, C_t) and the tied wte (V, C_t), from which the student's loss computes the teacher's logits one
// vocabulary slice at a time (kernels/lm_head.h): its (N, V) logits never exist whole.

#include <cstdint>
#include <string>
#include <vector>

#include "triad/kernels/lm_head.h"
#include "triad/model/gpt.h"
#include "triad/train/checkpoint.h"
#include "triad/train/options.h"

namespace triad {

class Teacher {
 public:
  // Opens options.teacher (a run: its newest checkpoint). Usage errors naming the teacher and the other side:
  // a tokenizer or vocabulary that differs from the data's (options.data_dir), a context shorter than
  // --seq-len, weights whose SHA-256 is not options.teacher_sha256 (when that is set: a resumed run).
  explicit Teacher(const TrainOptions& options);

  const std::string& checkpoint() const { return dir_; }  // the step_N directory
  const std::string& sha256() const { return sha256_; }   // of its model.safetensors

  // Runs the teacher on inputs (B, T); the soft targets stay valid until the next call.
  const SoftTargets<float>& forward(const int32_t* inputs, int B, int T);
  double seconds() const { return seconds_; }  // spent in forward() so far

  struct Checkpoint {  // a step_N directory and its manifest, checked against the student's
    std::string dir;
    CheckpointManifest manifest;
  };

 private:
  Teacher(const TrainOptions& options, const Checkpoint& teacher);

  std::string dir_, sha256_;
  GptConfig config_;
  Gpt<float> model_;                                // the embedding and blocks
  std::vector<float> lnf_w_, lnf_b_;                // its final LayerNorm, (C)
  std::vector<float> hidden_, statistics_, slice_;  // (N, C), LN_f's mean and rstd (2, N), logits scratch
  SoftTargets<float> soft_;
  double seconds_ = 0;
};

}  // namespace triad
