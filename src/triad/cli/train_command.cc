#include <ctime>
#include <filesystem>
#include <memory>

#include "triad/cli/cli.h"
#include "triad/cli/comm_options.h"
#include "triad/comm/collectives.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/data/prepare.h"
#include "triad/train/governance_observer.h"
#include "triad/train/metrics.h"
#include "triad/train/trainer.h"

namespace triad::cli {

namespace {

std::string default_run_dir() {
  std::time_t t = std::time(nullptr);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "runs/run-%Y%m%d-%H%M%S", std::localtime(&t));
  return buffer;
}

// Without --data: the bundled corpus, prepared once into data/bundled.
std::string bundled_data(int threads) {
  std::string dir = data_path("bundled");
  if (std::filesystem::exists(std::filesystem::path(dir) / "manifest.json")) return dir;
  std::string corpus = data_path("corpus");
  if (!std::filesystem::is_directory(corpus)) {
    fail_usage(
        "no --data given and the bundled corpus is missing ({}); run scripts/fetch-corpus or pass --data DIR",
        corpus);
  }
  log_info("preparing the bundled corpus {} into {} (once)", corpus, dir);
  PrepareOptions p;
  p.inputs = {corpus};
  p.out_dir = dir;
  p.threads = threads;
  p.blocklist_path = data_path("blocklist/en.txt");
  p.force = true;
  run_prepare(p);
  return dir;
}

}  // namespace

Runner add_train_command(CLI::App& root) {
  auto o = std::make_shared<TrainOptions>();
  o->threads = default_threads();
  auto resume = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);

  CLI::App* cmd =
      root.add_subcommand("train", "Train a GPT on prepared data, with checkpoints, metrics and resume.");
  cmd->footer(
      "With no --data, trains on the bundled corpus (prepared into data/bundled on first use).\n"
      "RUN holds run.json, tokenizer.model, metrics.jsonl and checkpoints/step_N/. Continue a run with\n"
      "'triad train --resume RUN [--steps S]'. Data parallel: 'mpirun -np N triad train --out RUN ...' "
      "(each\n"
      "rank takes batch / N sequences of every batch; rank 0 writes RUN). See docs/training.md.");
  add_config_option(*cmd);
  cmd->add_option("--data", o->data_dir,
                  "Prepared data directory (output of 'triad prepare'); default: the bundled corpus")
      ->type_name("DIR");
  cmd->add_option("--out", o->out_dir, "Run directory; default runs/run-DATE-TIME")->type_name("RUN");
  cmd->add_option("--resume", *resume,
                  "Continue RUN from its newest checkpoint (with --steps: up to that total)")
      ->type_name("RUN");
  cmd->add_flag("--force", *force, "Start over in an existing --out (deletes its contents)");
  cmd->add_option("--layers", o->model.layers, "Transformer blocks L")->check(positive())->group("Model");
  cmd->add_option("--d-model", o->model.d_model, "Model width C")->check(positive())->group("Model");
  cmd->add_option("--heads", o->model.heads, "Attention heads (must divide --d-model)")
      ->check(positive())
      ->group("Model");
  cmd->add_option("--seq-len", o->model.seq_len, "Context length T in tokens")
      ->check(positive())
      ->group("Model");
  cmd->add_option("--batch", o->batch,
                  "Global batch in sequences per optimizer step (split over ranks and --grad-accum)")
      ->check(positive());
  cmd->add_option("--grad-accum", o->grad_accum,
                  "Micro-batches per step; each holds batch / grad-accum sequences")
      ->check(positive());
  cmd->add_option("--steps", o->steps, "Total optimizer steps")->check(positive());
  cmd->add_option("--lr", o->lr, "Peak learning rate (after warm-up; cosine decay to 10% at the end)");
  cmd->add_option("--warmup", o->warmup, "Linear warm-up steps");
  cmd->add_option("--weight-decay", o->weight_decay,
                  "AdamW decoupled weight decay on the linear weights only");
  cmd->add_option("--beta1", o->beta1, "AdamW's momentum decay (first moment)");
  cmd->add_option("--beta2", o->beta2, "AdamW's second-moment decay");
  cmd->add_option("--topk-beta1", o->topk_beta1,
                  "AdamW's momentum decay for parameters whose gradients travel top-K (--grad-compression "
                  "topk:RATIO, or auto's top-K buckets): error feedback already carries each gradient over "
                  "steps, and more momentum delays it further (docs/comm.md)");
  cmd->add_option("--topk-lr-scale", o->topk_lr_scale,
                  "Learning-rate factor for the same parameters; 0.67 took the default run's top-K from "
                  "2.2 % to 0.5 % above none's val loss (three seeds in docs/comm.md)");
  cmd->add_option("--clip", o->clip,
                  "Clip the global gradient norm to this (0: off). Under top-K or PowerSGD each rank's own "
                  "gradient is clipped to it too, before error feedback holds any of it back");
  cmd->add_option("--seed", o->seed, "Seed for initialisation and data order");
  cmd->add_option("--eval-every", o->eval_every,
                  "Evaluate on the validation split every N steps (0: only at the end)");
  cmd->add_option("--eval-batches", o->eval_batches,
                  "Validation batches per evaluation (capped by the split's size; 0: the whole split)")
      ->check(non_negative());
  cmd->add_option("--ckpt-every", o->ckpt_every, "Checkpoint every N steps (and always at the end)");
  cmd->add_option("--keep-ckpts", o->keep_ckpts, "Checkpoints to keep (the newest)")->check(positive());
  cmd->add_option("--log-every", o->log_every, "Print a progress line every N steps (0: first and last only)")
      ->check(non_negative());
  cmd->add_option("--threads", o->threads,
                  "Threads for every kernel (OpenMP; BLAS runs single-threaded inside them)")
      ->check(positive());
  cmd->add_option(
         "--remat", o->remat.planner,
         "Activation rematerialization: none, full, sqrt, selective, greedy or optimal (default: optimal "
         "with --activation-memory, else none)")
      ->check(CLI::IsMember({"none", "full", "sqrt", "selective", "greedy", "optimal"}))
      ->group("Memory");
  cmd->add_option(
         "--activation-memory", o->remat.budget,
         "Budget for activation memory: a size (512MiB, 2GiB) or a fraction of what no remat needs (0.5x)")
      ->type_name("SIZE")
      ->group("Memory");
  cmd->add_option("--replan-every", o->remat.replan_every,
                  "Also re-plan every N steps (plans follow measured recompute costs anyway)")
      ->group("Memory");
  const char* kDataParallel = "Data parallel (under mpirun; see docs/comm.md)";
  add_comm_options(*cmd, o->comm, kDataParallel);
  cmd->add_option(
         "--zero", o->comm.zero,
         "1: shard AdamW's state over the data-parallel ranks (ZeRO stage 1): reduce-scatter of "
         "gradients, each rank updates its shard, all-gather of the parameters (fp32; with "
         "--grad-compression fp16 or int8 both travel so encoded, the parameters as their update; auto picks "
         "one of none, fp16 and int8)")
      ->check(CLI::Range(0, 1))
      ->group(kDataParallel);
  cmd->add_option("--sample-prompt", o->sample_prompt,
                  "Prompt for the sample printed at the end (empty: no sample)");
  cmd->add_option("--sample-tokens", o->sample_tokens, "Tokens to generate for that sample")
      ->check(non_negative());
  cmd->add_option("--dp-noise", o->dp_noise,
                  "DP-SGD: noise multiplier sigma (noise std = sigma x --dp-clip on the gradient sum); turns "
                  "on Poisson sampling with expected batch --batch and per-example clipping")
      ->type_name("SIGMA")
      ->group("Privacy");
  cmd->add_option("--dp-clip", o->dp_clip, "DP-SGD: clip each example's gradient to this L2 norm C")
      ->type_name("C")
      ->group("Privacy");
  cmd->add_option("--dp-delta", o->dp_delta, "DP-SGD: delta of the epsilon reported each step (below 1/N)")
      ->type_name("DELTA")
      ->group("Privacy");
  // Governance (docs/governance.md): every run keeps RUN/audit/; these are per invocation, not run options.
  auto gov = std::make_shared<GovernanceFlags>();
  cmd->add_option(
         "--audit-key", gov->audit_key,
         "Sign the audit log's tree heads with this private key (NAME.key from 'triad audit keygen')")
      ->type_name("FILE")
      ->group("Governance");
  cmd->add_option("--policy", gov->policy, "Policy rules (alert, halt, review) over the metrics; TOML")
      ->type_name("FILE.toml")
      ->group("Governance");

  return [o, resume, force, cmd, gov]() {
    auto audit = std::make_unique<AuditObserver>(*gov);  // a bad key or policy fails before any work
    // Collective under mpirun: every rank starts here.
    comm::Context& context = comm::init(comm::context_options(o->comm));
    if (context.rank() != 0) set_quiet(true);
    std::unique_ptr<Trainer> trainer;
    if (!resume->empty()) {
      ResumeRequest request;
      request.run_dir = *resume;
      nlohmann::json given = o->to_json();
      for (const CLI::Option* opt : cmd->get_options()) {
        if (opt->count() == 0 || opt->get_lnames().empty()) continue;
        std::string key = opt->get_lnames()[0];
        std::replace(key.begin(), key.end(), '-', '_');
        if (key == "resume" || key == "config" || key == "force" || key == "out") continue;
        if (key == "steps") {
          request.steps = o->steps;
        } else if (given["model"].contains(key)) {
          request.overrides[key] = given["model"][key];
        } else if (given.contains(key)) {
          request.overrides[key] = given[key];
        }
      }
      trainer = Trainer::resume(request, o->comm);
    } else {
      if (o->data_dir.empty()) {
        if (context.rank() == 0) {
          comm::Context::BusyScope busy(context, "preparing the bundled corpus");
          o->data_dir = bundled_data(o->threads);
        }
        comm::barrier(context, "waiting for rank 0 to prepare the bundled corpus");
        o->data_dir = data_path("bundled");
      }
      if (o->out_dir.empty()) {
        if (context.world() > 1) fail_usage("under mpirun, give the run directory with --out RUN");
        o->out_dir = default_run_dir();
      }
      if (cmd->get_option("--topk-warmup")->count() == 0) o->comm.topk_warmup = o->default_topk_warmup();
      trainer = Trainer::start(*o, *force);
    }
    if (!trainer->is_root()) return trainer->run();
    trainer->add_observer(std::make_unique<MetricsLog>(trainer->run_dir(), trainer->step()));
    trainer->add_observer(std::move(audit));
    return trainer->run();
  };
}

}  // namespace triad::cli
