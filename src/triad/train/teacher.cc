#include "triad/train/teacher.h"

#include <filesystem>

#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/safetensors.h"
#include "triad/kernels/layernorm.h"
#include "triad/train/checkpoint.h"
#include "triad/train/tokenizer_agreement.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

// The checkpoint a --teacher path names, checked against the student's data and context.
Teacher::Checkpoint checked_teacher(const TrainOptions& o) {
  const std::string dir = fs::absolute(resolve_checkpoint(o.teacher)).lexically_normal().string();
  CheckpointManifest manifest = read_checkpoint_manifest(dir);
  try {
    require_same_tokenizer(tokenizer_file_hash(checkpoint_tokenizer_path(dir)),
                           data_tokenizer_hash(o.data_dir));
    require_same_tokenizer(checkpoint_tokenizer_hash(dir, manifest.json), data_tokenizer_hash(o.data_dir));
  } catch (const Error& e) {
    fail_usage("--teacher {}: {}", o.teacher, e.what());
  }
  if (manifest.model.vocab != o.model.vocab) {
    fail_usage("--teacher {}: its vocabulary has {} tokens, the data's ({}) {}", o.teacher,
               manifest.model.vocab, o.data_dir, o.model.vocab);
  }
  if (manifest.model.seq_len < o.model.seq_len) {
    fail_usage("--teacher {}: its context of {} tokens is shorter than the student's --seq-len {}", o.teacher,
               manifest.model.seq_len, o.model.seq_len);
  }
  return {dir, std::move(manifest)};
}

}  // namespace

Teacher::Teacher(const TrainOptions& options) : Teacher(options, checked_teacher(options)) {}

Teacher::Teacher(const TrainOptions& options, const Checkpoint& teacher)
    : dir_(teacher.dir),
      config_(teacher.manifest.model),
      model_(config_, ModelShard{.blocks = config_.layers, .head = false}) {
  const std::string weights = (fs::path(dir_) / "model.safetensors").string();
  // read_checkpoint_manifest checked the file against the hash its manifest records
  sha256_ = teacher.manifest.json.at("files").at("model.safetensors").get<std::string>();
  if (!options.teacher_sha256.empty() && options.teacher_sha256 != sha256_) {
    fail_usage("--teacher {}: {} has SHA-256 {}, but the run was taught by {} (--teacher-sha256)",
               options.teacher, weights, sha256_, options.teacher_sha256);
  }
  load_checkpoint_weights(dir_, &model_);
  const SafetensorsFile file(weights);
  const int C = config_.d_model;
  const SafeTensor &w = file.get("ln_f.weight", {C}), &b = file.get("ln_f.bias", {C});
  lnf_w_.assign(w.data, w.data + C);
  lnf_b_.assign(b.data, b.data + C);
  soft_ = {.x = nullptr,
           .wte = model_.params() + model_.layout().find("wte.weight")->offset,
           .C = C,
           .temperature = static_cast<float>(options.distill_temperature),
           .weight = static_cast<float>(options.distill_weight)};
}

const SoftTargets<float>& Teacher::forward(const int32_t* inputs, int B, int T) {
  const Clock::time_point started = Clock::now();
  const int N = B * T, C = config_.d_model;
  model_.forward(inputs, nullptr, B, T, Gpt<float>::Pass::kInference);
  hidden_.resize(static_cast<size_t>(N) * C);
  statistics_.resize(2 * static_cast<size_t>(N));
  slice_.resize(static_cast<size_t>(N) * vocab_slice_width(config_.vocab));
  layernorm_forward(hidden_.data(), statistics_.data(), statistics_.data() + N, model_.stage_output(),
                    lnf_w_.data(), lnf_b_.data(), N, C);
  model_.release_activations();
  soft_.x = hidden_.data();
  soft_.slice = slice_.data();
  seconds_ += seconds_since(started);
  return soft_;
}

}  // namespace triad
