#include "triad/train/options.h"

#include <cmath>

#include "triad/core/error.h"
#include "triad/remat/planner.h"

namespace triad {

void TrainOptions::validate(int world) const {
  model.validate();
  if (batch < 1) fail_usage("--batch must be at least 1, got {}", batch);
  if (grad_accum < 1 || batch % (world * grad_accum) != 0) {
    if (world == 1) {
      fail_usage(
          "--grad-accum {} must divide --batch {} (each micro-batch holds batch / grad-accum sequences)",
          grad_accum, batch);
    }
    fail_usage(
        "--batch {} must be a multiple of {} ranks x --grad-accum {} (each rank's micro-batch holds batch / "
        "(ranks x grad-accum) sequences)",
        batch, world, grad_accum);
  }
  if (steps < 1) fail_usage("--steps must be at least 1, got {}", steps);
  // Written as !(x > 0) so that NaN fails too.
  if (!(lr > 0) || !std::isfinite(lr)) fail_usage("--lr must be a positive number, got {}", lr);
  if (warmup < 0) fail_usage("--warmup must not be negative, got {}", warmup);
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    fail_usage("--weight-decay must be a non-negative number, got {}", weight_decay);
  for (auto [flag, beta] : {std::pair{"--beta1", beta1}, {"--beta2", beta2}, {"--topk-beta1", topk_beta1}}) {
    if (!(beta >= 0 && beta < 1)) fail_usage("{} must be in [0, 1), got {}", flag, beta);
  }
  if (!(topk_lr_scale > 0) || !std::isfinite(topk_lr_scale))
    fail_usage("--topk-lr-scale must be a positive number, got {}", topk_lr_scale);
  if (!(clip >= 0) || !std::isfinite(clip))
    fail_usage("--clip must be a non-negative number (0: off), got {}", clip);
  if (eval_every < 0 || ckpt_every < 0) fail_usage("--eval-every and --ckpt-every must not be negative");
  if (keep_ckpts < 1) fail_usage("--keep-ckpts must be at least 1, got {}", keep_ckpts);
  if (threads < 1) fail_usage("--threads must be at least 1, got {}", threads);
  if (!remat.planner.empty()) parse_planner(remat.planner);
  if (remat.replan_every < 0) fail_usage("--replan-every must not be negative, got {}", remat.replan_every);
  if (comm.zero != 0 && comm.zero != 1) fail_usage("--zero must be 0 or 1, got {}", comm.zero);
  for (double x : {dp_noise, dp_clip, dp_delta}) {
    if (!(x >= 0) || !std::isfinite(x))
      fail_usage("--dp-noise, --dp-clip and --dp-delta must be non-negative numbers, got {}", x);
  }
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

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json j = {{"data", data_dir},
                      {"out", out_dir},
                      {"model", model.to_json()},
                      {"batch", batch},
                      {"grad_accum", grad_accum},
                      {"steps", steps},
                      {"lr", lr},
                      {"min_lr_ratio", min_lr_ratio},
                      {"warmup", warmup},
                      {"weight_decay", weight_decay},
                      {"beta1", beta1},
                      {"beta2", beta2},
                      {"topk_beta1", topk_beta1},
                      {"topk_lr_scale", topk_lr_scale},
                      {"clip", clip},
                      {"seed", seed},
                      {"eval_every", eval_every},
                      {"eval_batches", eval_batches},
                      {"ckpt_every", ckpt_every},
                      {"keep_ckpts", keep_ckpts},
                      {"log_every", log_every},
                      {"threads", threads},
                      {"remat", remat.planner},
                      {"activation_memory", remat.budget},
                      {"replan_every", remat.replan_every},
                      {"sample_prompt", sample_prompt},
                      {"sample_tokens", sample_tokens},
                      {"dp_noise", dp_noise},
                      {"dp_clip", dp_clip},
                      {"dp_delta", dp_delta}};
  j.update(nlohmann::json(comm));
  return j;
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j, const std::string& where) {
  TrainOptions o;
  try {
    o.data_dir = j.at("data").get<std::string>();
    o.out_dir = j.at("out").get<std::string>();
    o.model = GptConfig::from_json(j.at("model"), where);
    o.batch = j.at("batch");
    o.grad_accum = j.at("grad_accum");
    o.steps = j.at("steps");
    o.lr = j.at("lr");
    o.min_lr_ratio = j.at("min_lr_ratio");
    o.warmup = j.at("warmup");
    o.weight_decay = j.at("weight_decay");
    o.beta1 = j.at("beta1");
    o.beta2 = j.at("beta2");
    o.topk_beta1 = j.value("topk_beta1", o.beta1);     // before 2026-11-24 top-K buckets used beta1
    o.topk_lr_scale = j.value("topk_lr_scale", 1.0f);  // and lr
    o.clip = j.at("clip");
    o.seed = j.at("seed");
    o.eval_every = j.at("eval_every");
    o.eval_batches = j.at("eval_batches");
    o.ckpt_every = j.at("ckpt_every");
    o.keep_ckpts = j.at("keep_ckpts");
    o.log_every = j.at("log_every");
    o.threads = j.at("threads");
    o.remat.planner = j.at("remat");
    o.remat.budget = j.at("activation_memory");
    o.remat.replan_every = j.at("replan_every");
    o.sample_prompt = j.at("sample_prompt");
    o.sample_tokens = j.at("sample_tokens");
    o.comm = j.get<comm::CommOptions>();
    // Absent in runs from before DP-SGD.
    o.dp_noise = j.value("dp_noise", 0.0);
    o.dp_clip = j.value("dp_clip", 0.0);
    o.dp_delta = j.value("dp_delta", 0.0);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad training options: {}", where, e.what());
  }
  return o;
}

float learning_rate(const TrainOptions& o, int step) {
  if (step < o.warmup) return o.lr * static_cast<float>(step + 1) / static_cast<float>(o.warmup);
  const float min_lr = o.lr * o.min_lr_ratio;
  const int decay_steps = std::max(1, o.steps - o.warmup);
  const float progress =
      std::min(1.0f, static_cast<float>(step - o.warmup) / static_cast<float>(decay_steps));
  return min_lr + 0.5f * (o.lr - min_lr) * (1.0f + std::cos(3.14159265358979f * progress));
}

}  // namespace triad
