#include "triad/train/options.h"

#include <cmath>

#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/model/params.h"
#include "triad/parallel/balance.h"
#include "triad/parallel/layout.h"
#include "triad/parallel/pipeline_schedule.h"
#include "triad/remat/planner.h"

namespace triad {

const OptionTable<TrainOptions>& TrainOptions::options() {
  static const OptionTable<TrainOptions> table = [] {
    using O = TrainOptions;
    OptionTable<O> t;
    t.add("data", &O::data_dir,
          "Prepared data directory (output of 'triad prepare'); default: the bundled corpus")
        .value_name("DIR");
    t.add("out", &O::out_dir, "Run directory; default runs/run-DATE-TIME").value_name("RUN").per_command();
    t.include(&O::model, GptConfig::options(), "Model");
    t.add("batch", &O::batch,
          "Global batch in sequences per optimizer step (split over ranks and --grad-accum)")
        .check(Check::kPositive);
    t.add("grad-accum", &O::grad_accum, "Micro-batches per step; each holds batch / grad-accum sequences")
        .check(Check::kPositive);
    t.add("steps", &O::steps, "Total optimizer steps (with --resume: the new total)")
        .check(Check::kPositive)
        .may_change_on_resume();
    t.add("lr", &O::lr, "Peak learning rate (after warm-up; cosine decay to --min-lr-ratio of it at the end)")
        .check(Check::kPositive);
    t.add("min-lr-ratio", &O::min_lr_ratio, "Learning rate at the last step, as a fraction of --lr")
        .check(Check::kNonNegative);
    t.add("warmup", &O::warmup, "Linear warm-up steps").check(Check::kNonNegative);
    t.add("weight-decay", &O::weight_decay, "AdamW decoupled weight decay on the linear weights only")
        .check(Check::kNonNegative);
    t.add("beta1", &O::beta1, "AdamW's momentum decay (first moment)").check(Check::kFraction);
    t.add("beta2", &O::beta2, "AdamW's second-moment decay").check(Check::kFraction);
    t.add(
         "topk-beta1", &O::topk_beta1,
         "AdamW's momentum decay for parameters whose gradients travel top-K (--grad-compression topk:RATIO, "
         "or auto's top-K buckets): error feedback already carries each gradient over steps, and more "
         "momentum delays it further (docs/comm.md)")
        .check(Check::kFraction);
    t.add("topk-lr-scale", &O::topk_lr_scale,
          "Learning-rate factor for the same parameters; 0.67 took top-K from +0.8..+2.2 % above none's val "
          "loss to -1.3..+0.8 % at three seeds (docs/comm.md)")
        .check(Check::kPositive);
    t.add("optimizer-states", &O::optimizer_states,
          "How AdamW keeps its two moments: fp32 (8 bytes per parameter) or 8bit (2 bytes and a scale per "
          "block of 2048: bitsandbytes' block-wise dynamic quantization, dequantized for each update; the "
          "embeddings and tensors under 4096 values stay fp32). 8bit frees up to 6 of the 16 bytes per "
          "parameter of training state; checkpoints keep the 8-bit codes, so a run resumes bit-exact "
          "(docs/memory.md)")
        .one_of({"fp32", "8bit"});
    t.add("fused-update", &O::fused_update,
          "Update each parameter block in the backward as soon as its gradient is final, and free the "
          "gradient: 4 bytes per parameter less, a second forward and backward per step with --clip > 0 "
          "(clipping stays exact). One process, no --grad-accum (docs/memory.md)")
        .may_change_on_resume();
    t.add("memory-limit", &O::memory_limit,
          "Fit training into this much memory (20GiB): choose --optimizer-states, --fused-update and an "
          "--activation-memory budget, the cheapest combination that fits, or refuse the model up front")
        .value_name("SIZE")
        .may_change_on_resume();
    t.add("clip", &O::clip,
          "Clip the global gradient norm to this (0: off). Under top-K or PowerSGD each rank's own gradient "
          "is clipped to it too, before error feedback holds any of it back")
        .check(Check::kNonNegative);
    t.add("seed", &O::seed, "Seed for initialisation and data order");
    t.add("eval-every", &O::eval_every, "Evaluate on the validation split every N steps (0: only at the end)")
        .check(Check::kNonNegative)
        .may_change_on_resume();
    t.add("eval-batches", &O::eval_batches,
          "Validation batches per evaluation (capped by the split's size; 0: the whole split)")
        .check(Check::kNonNegative)
        .may_change_on_resume();
    t.add("ckpt-every", &O::ckpt_every, "Checkpoint every N steps (and always at the end)")
        .check(Check::kNonNegative)
        .may_change_on_resume();
    t.add("keep-ckpts", &O::keep_ckpts, "Checkpoints to keep (the newest)")
        .check(Check::kPositive)
        .may_change_on_resume();
    t.add("log-every", &O::log_every, "Print a progress line every N steps (0: first and last only)")
        .check(Check::kNonNegative)
        .may_change_on_resume();
    t.add("threads", &O::threads, "Threads for every kernel (OpenMP; BLAS runs single-threaded inside them)")
        .check(Check::kPositive)
        .may_change_on_resume();
    t.include(&O::remat, RematOptions::options(), "Memory");
    const char* kDataParallel = "Data parallel (under mpirun; see docs/comm.md)";
    t.include(&O::comm, comm::CommOptions::options(), kDataParallel);
    t.add("balance", &O::balance,
          "Rows of each global batch per data-parallel rank: none (equal), static (in proportion to the "
          "speeds measured in steps 2-4, then fixed) or online (re-estimated every step); for uneven "
          "hardware. Each rank trains at least --grad-accum rows; a resumed run measures again. Under "
          "--pipeline-parallel it splits the blocks over the stages instead: by one block timed on each "
          "rank at the start (unless --pipeline-split is given), and online also by the stages' measured "
          "times as they train, moving blocks (through a checkpoint) when that is 10 % faster; stages that "
          "share CPUs are priced by simulating their turns. The split is recorded as the run's "
          "--pipeline-split")
        .in_group(kDataParallel)
        .one_of({"none", "static", "online"})
        .may_change_on_resume();
    t.add("balance-gamma", &O::balance_gamma,
          "--balance online: how strongly a measured imbalance moves the split, gain = 2 sigmoid(gamma x "
          "imbalance) - 1 (paper Eq. 6); small gaps (timing noise) move it little, large ones at once")
        .value_name("GAMMA")
        .in_group(kDataParallel)
        .check(Check::kPositive)
        .may_change_on_resume();
    const char* kModelParallel = "Model parallel (under mpirun; see docs/parallel.md)";
    t.add("layout", &O::layout,
          "manual (the flags below) or auto: the layout, --grad-accum, --zero and --grad-compression that "
          "'triad plan' predicts fastest within each rank's share of this node's memory and --memory-limit "
          "(with --resume: the fastest that keeps the run's --grad-accum, --zero and --grad-compression)")
        .in_group(kModelParallel)
        .per_command();
    t.add("layout-trials", &O::layout_trials,
          "With --layout auto: before training, time up to N of the layouts predicted within 30 % of the "
          "fastest (one per data x tensor x pipeline shape and, with stages, per micro-batch count and "
          "split) for 2 steps each on this job's ranks and data, the 3 fastest for 3 more, and train the "
          "fastest measured. The trials write nothing; the run starts at step 0 as if its layout had been "
          "given; run.json keeps what each measured (0: trust the prediction; docs/parallel.md)")
        .value_name("N")
        .in_group(kModelParallel)
        .check(Check::kNonNegative)
        .per_command();
    t.add("tensor-parallel", &O::tensor_parallel,
          "Ranks that split each layer (attention heads, MLP, vocabulary) Megatron-style; it must divide the "
          "heads and the vocabulary. Checkpoints hold whole tensors: a run resumes at any layout")
        .value_name("N")
        .in_group(kModelParallel)
        .check(Check::kPositive)
        .may_change_on_resume();
    t.add("pipeline-parallel", &O::pipeline_parallel,
          "Pipeline stages, each holding contiguous blocks; --grad-accum is the number of micro-batches in "
          "flight (more: a smaller bubble, (stages - 1) / (micro-batches + stages - 1))")
        .value_name("M")
        .in_group(kModelParallel)
        .check(Check::kPositive)
        .may_change_on_resume();
    t.add("pipeline-schedule", &O::pipeline_schedule,
          "1f1b (one forward, one backward: activations of at most `stages` micro-batches per stage) or "
          "gpipe (all forwards, then all backwards: all micro-batches' activations)")
        .in_group(kModelParallel)
        .may_change_on_resume();
    t.add("pipeline-split", &O::pipeline_split,
          "Blocks per stage, e.g. 3,1 (must add up to --layers); default: balanced by work, the last stage "
          "also running the LM head (vocabulary / (12 d-model + seq-len) blocks' worth)")
        .value_name("N,N,...")
        .in_group(kModelParallel)
        .may_change_on_resume();
    t.add("sample-prompt", &O::sample_prompt, "Prompt for the sample printed at the end (empty: no sample)")
        .may_change_on_resume();
    t.add("sample-tokens", &O::sample_tokens, "Tokens to generate for that sample")
        .check(Check::kNonNegative)
        .may_change_on_resume();
    const char* kPrivacy = "Privacy";
    t.add("dp-noise", &O::dp_noise,
          "DP-SGD: noise multiplier sigma (noise std = sigma x --dp-clip on the gradient sum); turns on "
          "Poisson "
          "sampling with expected batch --batch and per-example clipping")
        .value_name("SIGMA")
        .in_group(kPrivacy)
        .check(Check::kNonNegative);
    t.add("dp-clip", &O::dp_clip, "DP-SGD: clip each example's gradient to this L2 norm C")
        .value_name("C")
        .in_group(kPrivacy)
        .check(Check::kNonNegative);
    t.add("dp-delta", &O::dp_delta, "DP-SGD: delta of the epsilon reported each step (below 1/N)")
        .value_name("DELTA")
        .in_group(kPrivacy)
        .check(Check::kNonNegative);
    t.include(&O::energy, EnergyOptions::options(), "Energy");
    const char* kDistill = "Knowledge distillation (docs/compress.md)";
    t.add("teacher", &O::teacher,
          "Train this model (the student) on a trained run's or checkpoint's soft targets as well: loss = (1 "
          "- "
          "A) CE + A T^2 KL(teacher || student) at temperature T. The teacher runs forward only, on the same "
          "tokens; it must share the data's tokenizer and have a context at least --seq-len long")
        .value_name("RUN_OR_CKPT")
        .in_group(kDistill);
    t.add("teacher-sha256", &O::teacher_sha256,
          "SHA-256 of the teacher's model.safetensors: refuse a teacher with other weights (recorded at the "
          "start of every distilled run, and checked when it resumes)")
        .value_name("HEX")
        .in_group(kDistill);
    t.add("distill-temperature", &O::distill_temperature,
          "T: both distributions are softmax(logits / T); higher shows the student more of the teacher's "
          "ranking of unlikely tokens")
        .value_name("T")
        .in_group(kDistill)
        .check(Check::kPositive);
    t.add("distill-weight", &O::distill_weight,
          "A in [0, 1]: the soft targets' share of the loss (0: plain training, 1: soft targets only)")
        .value_name("A")
        .in_group(kDistill)
        .check(Check::kNonNegative);
    return t;
  }();
  return table;
}

void TrainOptions::validate(int world) const {
  check_options(options(), *this);
  model.validate();
  if (layout != "manual" && layout != "auto") fail_usage("--layout {}: expected manual or auto", layout);
  const parallel::Layout ranks = parallel::Layout::of(world, tensor_parallel, pipeline_parallel);
  ModelShard{.tensor_size = tensor_parallel}.validate(model);
  parallel::parse_pipeline_schedule(pipeline_schedule);
  stage_first_blocks();
  if (ranks.tensor * ranks.pipeline > 1) {
    const std::string refusal = model_parallel_refusal();
    if (!refusal.empty()) fail_usage("{}", refusal);
  }
  if (layout_trials > 0) {
    if (layout != "auto") fail_usage("--layout-trials {} applies with --layout auto", layout_trials);
    if (dp()) {
      fail_usage(
          "--layout-trials does not apply under DP-SGD (--dp-noise): its trial steps would see the private "
          "data outside the privacy ledger");
    }
  }
  if (parallel::parse_balance(balance) != parallel::BalanceMode::kNone) {
    if (dp())
      fail_usage("--balance {} does not apply under DP-SGD (--dp-noise): use --balance none", balance);
    if (remat.active())
      fail_usage(
          "--balance {} does not apply with --remat/--activation-memory, whose plan is for one "
          "micro-batch size",
          balance);
  }
  if (fused_update) {
    // The reduction of a bucket over ranks, a later micro-batch, a pipeline stage or DP-SGD's examples
    // would all need the gradient after its block's update.
    const char* refused = ranks.data > 1                      ? "data parallelism (several ranks)"
                          : ranks.tensor * ranks.pipeline > 1 ? "--tensor-parallel/--pipeline-parallel"
                          : grad_accum > 1                    ? "--grad-accum > 1"
                          : dp()                              ? "DP-SGD (--dp-noise)"
                          : parallel::parse_balance(balance) != parallel::BalanceMode::kNone ? "--balance"
                                                                                             : nullptr;
    if (refused) {
      fail_usage(
          "--fused-update runs in one process without {}: it frees each block's gradient in the backward, "
          "and that needs it later",
          refused);
    }
  }
  if (!teacher.empty()) {
    const char* refused = dp() ? "DP-SGD (--dp-noise)" : fused_update ? "--fused-update" : nullptr;
    if (refused) fail_usage("--teacher with {} is not supported yet", refused);
    if (distill_weight > 1) fail_usage("--distill-weight {}: expected a share in [0, 1]", distill_weight);
  } else if (!teacher_sha256.empty()) {
    fail_usage("--teacher-sha256 only applies with --teacher");
  }
  if (!memory_limit.empty() && !parse_bytes(memory_limit)) {
    fail_usage("--memory-limit {}: expected a size such as 20GiB or 512MiB", memory_limit);
  }
  world = ranks.data;  // the batch divides over the data-parallel ranks only
  if (batch % (world * grad_accum) != 0) {
    if (world == 1) {
      fail_usage(
          "--grad-accum {} must divide --batch {} (each micro-batch holds batch / grad-accum sequences)",
          grad_accum, batch);
    }
    fail_usage(
        "--batch {} must be a multiple of {} data-parallel ranks x --grad-accum {} (each rank's micro-batch "
        "holds batch / (ranks x grad-accum) sequences)",
        batch, world, grad_accum);
  }
  if (!remat.planner.empty()) parse_planner(remat.planner);
  if (!dp()) {
    if (dp_clip > 0 || dp_delta > 0)
      fail_usage("--dp-clip and --dp-delta only apply with --dp-noise SIGMA (DP-SGD)");
    return;
  }
  if (!(dp_clip > 0)) fail_usage("--dp-noise needs --dp-clip C, the per-example gradient norm bound");
  if (!(dp_delta > 0 && dp_delta < 1))
    fail_usage("--dp-noise needs --dp-delta in (0, 1), the delta of the reported epsilon (e.g. 1e-5)");
  if (world > 1 && comm.grad_compression != "none") {
    fail_usage(
        "--grad-compression {} does not apply under DP-SGD: error feedback would carry an example's gradient "
        "into later steps and rounding can exceed the --dp-clip bound; use none",
        comm.grad_compression);
  }
  if (grad_accum != 1)
    fail_usage("--grad-accum {} does not apply under DP-SGD, which processes one sequence at a time",
               grad_accum);
  if (remat.active())
    fail_usage(
        "--remat/--activation-memory do not apply under DP-SGD, which processes one sequence at a time");
}

std::string TrainOptions::model_parallel_refusal() const {
  if (dp()) return "--dp-noise (DP-SGD) runs without --tensor-parallel and --pipeline-parallel";
  if (!teacher.empty()) return "--teacher with --tensor-parallel/--pipeline-parallel is not supported yet";
  if (optimizer_states != "fp32") {
    return fmt::format(
        "--optimizer-states {} runs without --tensor-parallel and --pipeline-parallel (yet): its checkpoint "
        "blocks are those of whole tensors",
        optimizer_states);
  }
  const std::string& codec = comm.grad_compression;
  if (codec.find("topk") != std::string::npos || codec.find("powersgd") != std::string::npos ||
      codec == "auto") {
    return fmt::format(
        "--grad-compression {} keeps per-rank state that checkpoints do not carry across layouts; with "
        "--tensor-parallel or --pipeline-parallel use none, fp16 or int8",
        codec);
  }
  return "";
}

std::vector<int> TrainOptions::stage_first_blocks() const {
  if (!pipeline_split.empty() || pipeline_parallel == 1) {
    return parallel::split_blocks(model.layers, pipeline_parallel, pipeline_split);
  }
  parallel::split_blocks(model.layers, pipeline_parallel, "");  // the same errors for too many stages
  return parallel::balanced_split(model.layers,
                                  std::vector<double>(static_cast<size_t>(pipeline_parallel), 1.0),
                                  parallel::model_head_blocks(model));
}

nlohmann::json TrainOptions::to_json() const {
  return options_to_json(options(), *this);
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: bad training options: not a JSON object", where);
  nlohmann::json flat = j;
  // Before options were declared in one table (2026-12), the model's lived under "model" and numbers were
  // floats; the float values read back exactly as the doubles they were written as.
  if (j.contains("model") && j["model"].is_object()) {
    for (const auto& [key, value] : j["model"].items()) flat[key] = value;
  }
  TrainOptions o = options_from_json(options(), flat, where);
  // Before 2026-11-24 top-K buckets used --beta1 and the full learning rate.
  if (!j.contains("topk_beta1")) o.topk_beta1 = o.beta1;
  if (!j.contains("topk_lr_scale")) o.topk_lr_scale = 1.0;
  return o;
}

float learning_rate(const TrainOptions& o, int step) {
  const float lr = static_cast<float>(o.lr);  // in float, as the optimizer applies it
  if (step < o.warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(o.warmup);
  const float min_lr = lr * static_cast<float>(o.min_lr_ratio);
  const int decay_steps = std::max(1, o.steps - o.warmup);
  const float progress =
      std::min(1.0f, static_cast<float>(step - o.warmup) / static_cast<float>(decay_steps));
  return min_lr + 0.5f * (lr - min_lr) * (1.0f + std::cos(3.14159265358979f * progress));
}

}  // namespace triad
