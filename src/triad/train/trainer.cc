#include "triad/train/trainer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "triad/comm/collectives.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/exit_code.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"
#include "triad/core/parallel.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"
#include "triad/data/tokenizer.h"
#include "triad/train/evaluate.h"
#include "triad/train/memory_check.h"
#include "triad/train/rank_totals.h"
#include "triad/train/resume_point.h"
#include "triad/train/stage_balance.h"
#include "triad/train/stop_signal.h"
#include "triad/train/tokenizer_agreement.h"
#include "triad/train/trainer_impl.h"

namespace triad {

namespace fs = std::filesystem;
Trainer::Trainer(comm::Context& context, const TrainOptions& options)
    : options_(options), impl_(std::make_unique<Impl>(context, options)) {}
Trainer::~Trainer() = default;

bool Trainer::is_root() const {
  return impl_->comm.rank() == 0;
}

void Trainer::open_data() {
  Impl& s = *impl_;
  const std::string manifest_path = (fs::path(options_.data_dir) / "manifest.json").string();
  s.train = std::make_unique<TokenDataset>(TokenDataset::open(options_.data_dir, "train"));
  s.val = std::make_unique<TokenDataset>(TokenDataset::open(options_.data_dir, "val"));
  s.data_manifest_sha256 = sha256_file_hex(manifest_path);
  if (static_cast<int>(s.train->vocab_size()) != options_.model.vocab) {
    fail("{}: the data's vocabulary has {} tokens, the model {}", options_.data_dir, s.train->vocab_size(),
         options_.model.vocab);
  }
  s.sampler = std::make_unique<Sampler>(*s.train, SamplerOptions{.seq_len = options_.model.seq_len,
                                                                 .seed = options_.seed,
                                                                 .shuffle = true,
                                                                 .rank = s.at.data,
                                                                 .world = s.layout.data});
}

// Chooses the objects that run a step. Collective.
void Trainer::build_step() {
  Impl& s = *impl_;
  const int world = s.comm.world(), data = s.layout.data, T = options_.model.seq_len;
  if (options_.remat.active()) {
    // A pipeline stage plans for the micro-batches its schedule keeps in flight at once.
    const int in_flight = parallel::max_in_flight(
        parallel::stage_ops(parallel::parse_pipeline_schedule(options_.pipeline_schedule), s.at.pipeline,
                            s.layout.pipeline, options_.grad_accum));
    s.remat = std::make_unique<RematController>(
        s.model, options_.remat, options_.micro_batch(world), T,
        is_root() && !run_dir().empty() ? (fs::path(run_dir()) / "remat_plan.jsonl").string() : std::string(),
        state_.step, s.layout.pipeline > 1 ? in_flight : 1);
    log_info("{}", s.remat->summary());
  }
  if (options_.dp()) {
    // Every rank draws the same batches and noise keys: rank 0's secrets (dp_sgd.h).
    DpSecrets secrets = DpSecrets::draw();
    comm::broadcast_from_root(s.comm, secrets.sampling.data(), 4, "sending the DP-SGD sampling secret");
    comm::broadcast_from_root(s.comm, secrets.noise.data(), 4, "sending the DP-SGD noise secret");
    s.dp = std::make_unique<DpSgd>(DpSgdConfig{options_.dp_noise, options_.dp_clip, options_.dp_delta,
                                               options_.batch, s.comm.rank(), world},
                                   *s.sampler, secrets);
    s.gradient = std::make_unique<DpSgdBatches>(*s.dp, T);
  } else if (s.layout.pipeline > 1) {
    auto pipeline = std::make_unique<PipelineBatches>(
        *s.groups.pipeline, parallel::parse_pipeline_schedule(options_.pipeline_schedule), *s.sampler,
        options_.batch, options_.batch / data, options_.grad_accum, T);
    s.pipeline = pipeline.get();
    s.gradient = std::move(pipeline);
  } else {
    auto language_model = std::make_unique<LanguageModelBatches>(*s.sampler, options_.batch, data,
                                                                 options_.grad_accum, T, s.teacher.get());
    s.language_model = language_model.get();
    s.gradient = std::move(language_model);
  }
  const parallel::BalanceMode balance = parallel::parse_balance(options_.balance);
  // options.validate() refused it with DP-SGD; under pipelines the stages are balanced (stage_balance.h)
  if (balance == parallel::BalanceMode::kOnline && s.layout.pipeline > 1) {
    // (TRIAD_TEST_SLOW_RANK's model machine gives every rank a core.)
    s.test_block = test_block_seconds(s.comm.rank());
    s.stages = std::make_unique<parallel::StageBalancer>(
        s.stage_blocks(), parallel::model_head_blocks(options_.model),
        s.test_block > 0 ? parallel::StageSharing{} : stage_sharing(s.comm, options_));
  }
  if (balance != parallel::BalanceMode::kNone && options_.pipeline_parallel == 1) {
    s.balance = std::make_unique<parallel::RowBalancer>(balance, options_.batch, data, options_.grad_accum,
                                                        options_.balance_gamma);
    s.test_speed = test_rows_per_second(s.at.data);
    using B = parallel::RowBalancer;
    log_info("--balance {}: each data-parallel rank's rows of the batch follow its measured speed{}",
             options_.balance,
             balance == parallel::BalanceMode::kOnline
                 ? fmt::format(" (gamma {:g})", options_.balance_gamma)
                 : fmt::format(" in steps {}-{}", B::kWarmupSteps + 1, B::kWarmupSteps + B::kStaticSteps));
  }
  const parallel::DistributedOptimizerOptions o{
      .adamw = {.beta1 = static_cast<float>(options_.beta1),
                .beta2 = static_cast<float>(options_.beta2),
                .weight_decay = static_cast<float>(options_.weight_decay)},
      .clip = options_.dp() ? 0.0 : options_.clip,  // DP-SGD clipped each example instead
      .topk_beta1 = static_cast<float>(options_.topk_beta1),
      .topk_lr_scale = static_cast<float>(options_.topk_lr_scale),
      .comm = options_.comm,
      .seed = options_.seed,
      .states = parse_state_precision(options_.optimizer_states)};
  s.optimizer = std::make_unique<parallel::DistributedOptimizer>(*s.groups.data, s.model, o,
                                                                 s.groups.model.get(), s.groups.tied.get());
  if (options_.fused_update)
    s.fused = std::make_unique<FusedUpdate>(s.model, s.optimizer->adamw(), o.adamw, o.clip, *s.sampler,
                                            options_.batch, T);
  if (s.model_parallel())
    log_info("{}",
             parallel::describe(s.layout, s.stage_first, options_.pipeline_schedule, options_.grad_accum));
  if (data > 1) log_info("{}", s.optimizer->describe(options_.batch / data));
}

std::unique_ptr<Trainer> Trainer::start(comm::Context& context, const TrainOptions& given, bool force) {
  TrainOptions options = given;
  options.validate(context.world());
  const bool root = context.rank() == 0;
  const std::string manifest_path = (fs::path(options.data_dir) / "manifest.json").string();
  if (!path_exists(manifest_path)) {
    fail_usage(
        "--data {} is not a prepared data directory (no manifest.json); create it with 'triad prepare'",
        options.data_dir);
  }
  nlohmann::json data_manifest = read_json_file(manifest_path);
  require_same_tokenizer(tokenizer_file_hash((fs::path(options.data_dir) / "tokenizer.model").string()),
                         data_tokenizer_hash(options.data_dir));
  options.model.vocab = data_manifest.at("tokenizer").at("vocab_size").get<int>();
  const int window = data_manifest.value("max_tokens", options.model.seq_len);
  if (options.model.seq_len > window) {
    fail_usage(
        "--seq-len {} exceeds the training window of {} tokens that 'triad prepare --max-tokens' recorded in "
        "{}",
        options.model.seq_len, window, manifest_path);
  }
  auto teacher = options.teacher.empty() ? nullptr : std::make_unique<Teacher>(options);
  set_threads(options.threads);
  nlohmann::json layout_auto;
  if (options.layout == "auto") {
    if (root) check_run_dir(options.out_dir, force);  // before the planner's measurements and trials
    options = choose_layout(context, options, &teacher, &layout_auto);
  }
  if (balances_stages(options)) {
    std::string chose;
    options.pipeline_split = measured_pipeline_split(context, options, &chose);
    if (root) log_info("{}", chose);
  }
  options = fit_training_memory(options, context.world(), false, root);
  if (root) create_run_dir(options.out_dir, force);
  comm::barrier(context, "waiting for rank 0 to create the run directory");

  std::unique_ptr<Trainer> t(new Trainer(context, options));
  if (teacher) {  // the run records exactly what taught it
    t->options_.teacher = teacher->checkpoint();
    t->options_.teacher_sha256 = teacher->sha256();
    if (root)
      log_info("teacher {} (model.safetensors SHA-256 {}), T {:g}, A {:g}", teacher->checkpoint(),
               teacher->sha256(), options.distill_temperature, options.distill_weight);
    t->impl_->teacher = std::move(teacher);
  }
  t->open_data();
  t->impl_->model.init_weights(options.seed);  // every rank the same weights
  t->build_step();
  if (!root) return t;
  write_file_atomic((fs::path(options.out_dir) / "tokenizer.model").string(),
                    read_file((fs::path(options.data_dir) / "tokenizer.model").string()));
  nlohmann::json run = {{"format", "triad-run"},
                        {"triad_version", kVersion},
                        {"host", host_name()},
                        {"options", t->options_.to_json()},
                        {"model", options.model.describe()},
                        {"data_manifest_sha256", t->impl_->data_manifest_sha256},
                        {"ranks", context.world()}};
  if (!layout_auto.is_null()) run["layout_auto"] = std::move(layout_auto);
  write_file_atomic((fs::path(options.out_dir) / "run.json").string(), run.dump(2) + "\n");
  return t;
}

std::unique_ptr<Trainer> Trainer::resume(comm::Context& context, const ResumeRequest& request) {
  // Rank 0 chooses and checks the checkpoint; the others load the one it chose.
  const bool root = context.rank() == 0;
  std::optional<ResumePoint> point;
  uint64_t step = 0;
  if (root) {
    comm::Context::BusyScope busy(context, "checking the checkpoints");
    point = find_resume_point(request.run_dir, request.checkpoint);
    step = static_cast<uint64_t>(point->manifest.state.step);
  }
  comm::broadcast_from_root(context, &step, 1, "sending the checkpoint to resume from");
  const std::string dir = root ? point->dir : checkpoint_dir(request.run_dir, static_cast<int>(step));
  CheckpointManifest manifest = root ? std::move(point->manifest) : read_checkpoint_manifest(dir);
  TrainOptions options = options_for_resume(TrainOptions::options(), manifest.options, request.given,
                                            request.given_names, request.run_dir);
  options.out_dir = request.run_dir;
  // Under --layout auto, the run's own layout may not fit this job (other ranks): the chosen one is checked.
  if (options.layout != "auto") options.validate(context.world());
  if (options.steps < manifest.state.step) {
    fail_usage("{} is at step {}; --steps {} is below it (--steps is the run's total: give {} or more)",
               request.run_dir, manifest.state.step, options.steps, manifest.state.step);
  }
  const TokenizerHash run_tokenizer =
      tokenizer_file_hash((fs::path(request.run_dir) / "tokenizer.model").string());
  require_same_tokenizer(run_tokenizer, checkpoint_tokenizer_hash(dir, manifest.json));
  require_same_tokenizer(run_tokenizer, data_tokenizer_hash(options.data_dir));
  auto teacher = options.teacher.empty() ? nullptr : std::make_unique<Teacher>(options);  // checks its SHA
  set_threads(options.threads);
  if (options.layout == "auto") {  // checkpoints hold whole tensors: any layout resumes the run
    nlohmann::json layout_auto;
    options = choose_layout(context, options, &teacher, &layout_auto, true);
  }
  options = fit_training_memory(options, context.world(), true, root);

  std::unique_ptr<Trainer> t(new Trainer(context, options));
  Impl& s = *t->impl_;
  s.teacher = std::move(teacher);
  t->open_data();
  if (manifest.json.value("data_manifest_sha256", "") != s.data_manifest_sha256) {
    log_warn("{}/manifest.json changed since the run started; resuming on the data as it is now",
             options.data_dir);
  }
  if (root) clear_after_resume_point(request.run_dir, *point);
  t->restore(dir, manifest);
  log_info("resuming {} from {} (step {} of {})", request.run_dir, dir, t->state_.step, options.steps);
  return t;
}

// Collective: the state of checkpoint `dir` into freshly built parts (open_data() done), then the step's
// objects built around it.
void Trainer::restore(const std::string& dir, const CheckpointManifest& manifest) {
  Impl& s = *impl_;
  load_checkpoint_weights(dir, &s.model);
  state_ = manifest.state;
  s.sampler->restore(manifest.state.sampler);
  last_checkpoint_ = dir;
  build_step();
  if (s.dp) s.dp->restore(manifest.state.dp, dir);
  s.optimizer->load(load_optimizer_state(dir, manifest, s.model.layout(), s.comm.rank()), dir);
}

const RdpAccountant* Trainer::privacy_ledger() const {
  return impl_->dp ? &impl_->dp->accountant() : nullptr;
}

template <typename F>
void Trainer::notify(F&& f) {
  for (auto& o : observers_) f(*o);
}

void Trainer::train_step() {
  Impl& s = *impl_;
  const auto started = Clock::now();
  StepRecord r;
  r.step = state_.step + 1;
  r.lr = learning_rate(options_, state_.step);
  s.model.arena().reset_peak();
  std::vector<int> rows;  // --balance: this step's split
  bool reshaped = false;  // this rank's rows changed, and with them its activations' shapes
  if (s.balance) {
    rows = s.balance->rows();
    reshaped = rows[s.at.data] != s.rows;
    s.rows = rows[s.at.data];
    s.language_model->set_share(s.balance->offset(s.at.data), s.rows);
    if (reshaped) {
      // The arena reuses buffers of the same size only: those of the old shapes would stay held.
      s.model.release_activations();
      s.model.arena().trim();
    }
  }
  // This rank's gradient of its share of the batch; the reduction starts on each bucket as it is done.
  const auto computing = Clock::now();
  const BatchResult mine = s.fused ? s.fused->measure(static_cast<float>(r.lr))
                                   : s.gradient->compute(s.model, s.optimizer->hook());
  const double compute_seconds = seconds_since(computing);
  if (!s.fused) s.optimizer->finish_reduction();  // the gradient: the average over the data-parallel ranks
  // --balance: each data-parallel rank's time from its reporting rank alone, so that each sum has one term
  // and every rank holds the same bits (and computes the same split).
  std::vector<double> rank_seconds(s.balance ? s.layout.data : 0, 0.0);
  if (s.balance && s.reports())
    rank_seconds[s.at.data] = s.test_speed > 0 ? s.rows / s.test_speed : compute_seconds;
  double stop = stop_signal() ? 1 : 0;  // every rank stops after the step where any rank had a signal
  const BatchTotals all =
      sum_over_ranks(s.comm, s.reports() ? mine.totals : BatchTotals{}, &stop, &rank_seconds);
  preempted_ |= stop > 0;
  r.loss = all.loss_count > 0 ? all.loss_sum / all.loss_count : state_.loss;  // an empty DP-SGD batch: none
  r.grad_norm = s.fused ? s.fused->grad_norm() : s.optimizer->grad_norm();
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    fail(
        "step {}: the loss is {} and the gradient norm {}; training stopped before the update. The last good "
        "checkpoint is {}",
        r.step, r.loss, r.grad_norm,
        last_checkpoint_.empty() ? "none (no checkpoint was written yet)" : last_checkpoint_);
  }
  // Clip, AdamW, ZeRO-1's gather; or the fused update's second pass.
  s.fused ? s.fused->update(static_cast<float>(r.lr))
          : s.optimizer->step(static_cast<float>(r.lr), r.grad_norm);
  state_.step = r.step;
  state_.loss = r.loss;

  const double seconds = seconds_since(started);
  r.tokens_per_s = all.sequences * options_.model.seq_len / seconds;
  r.step_ms = seconds * 1e3;
  r.peak_activation_bytes = s.model.arena().peak_bytes();
  r.peak_rss_bytes = peak_rss_bytes();
  r.optimizer_bytes = s.optimizer->state_bytes();
  if (s.layout.data > 1) r.comm = s.optimizer->stats();
  if (s.remat) r.remat = s.remat->after_step(r.step, mine.recompute_seconds);
  if (s.balance) {
    s.balance->observe(rank_seconds);  // the next step's rows
    r.balance = StepRecord::Balance{.rows = std::move(rows), .speed = s.balance->speeds()};
  }
  s.gradient->report(all, &r);
  if (s.pipeline) observe_stages(&r);
  notify([&](TrainObserver& o) { o.on_step(*this, r); });
}

// Collective: the same sequences at any world size, each rank computing its share of the batches; rank 0
// reports the result.
void Trainer::run_eval() {
  Impl& s = *impl_;
  // Each batch's loss from one rank: the reporting rank of the data-parallel row that computed it.
  auto forward = [&](const int32_t* inputs, const int32_t* targets, int B, int T) {
    const double loss = s.pipeline ? s.pipeline->forward_only(s.model, inputs, targets, B, T)
                                   : s.model.forward(inputs, targets, B, T, Gpt<float>::Pass::kInference);
    return s.reports() ? loss : 0.0;
  };
  EvalShare share = evaluate_share(forward, *s.val, options_.eval_batches, options_.micro_batch(),
                                   options_.model.seq_len, s.at.data, s.layout.data);
  s.model.release_activations();
  comm::allreduce_sum(s.comm, share.batch_loss.data(), static_cast<int>(share.batch_loss.size()),
                      "evaluation");
  if (!is_root()) return;
  EvalResult result = combine_shares(share);
  const EvalRecord r{.step = state_.step,
                     .val_loss = result.loss,
                     .val_ppl = result.perplexity(),
                     .val_tokens = result.tokens};
  notify([&](TrainObserver& o) { o.on_eval(*this, r); });
}

// Collective: every rank's part of the state goes to rank 0, which writes the checkpoint.
CheckpointInfo Trainer::checkpoint() {
  Impl& s = *impl_;
  state_.sampler = s.sampler->state();
  if (s.dp) state_.dp = s.dp->state();
  CheckpointInfo info;
  s.optimizer->with_state([&](const parallel::OptimizerState& held) {
    if (!s.model_parallel()) {
      if (is_root()) info = write_checkpoint(s.model.params(), held);
      return;
    }
    // Whole tensors by name, whatever the layout: under model parallelism rank 0 gathers the parts.
    std::vector<std::vector<float>> whole =
        parallel::gather_whole(s.comm, options_.model, s.layout, s.stage_first, s.model.layout(),
                               {s.model.params(), held.m.data(), held.v.data()});
    if (!is_root()) return;
    parallel::OptimizerState gathered;  // fp32 only (8-bit states refuse model parallelism)
    gathered.m = std::move(whole[1]);
    gathered.v = std::move(whole[2]);
    gathered.adam_steps = held.adam_steps;
    gathered.world = held.world;
    gathered.sync_steps = held.sync_steps;
    gathered.residuals = held.residuals;
    gathered.codec = held.codec;
    info = write_checkpoint(whole[0].data(), gathered);
  });
  return info;
}

// Rank 0: writes the checkpoint of the whole model's `params` and `optimizer` state.
CheckpointInfo Trainer::write_checkpoint(const float* params, const parallel::OptimizerState& optimizer) {
  Impl& s = *impl_;
  // The other ranks wait in the next step's collectives; a slow disk must not look like a hung rank.
  comm::Context::BusyScope busy(s.comm, fmt::format("writing checkpoint step {}", state_.step));
  const nlohmann::json extra = {
      {"data_manifest_sha256", s.data_manifest_sha256},
      {"tokenizer_sha256", sha256_file_hex((fs::path(run_dir()) / "tokenizer.model").string())}};
  CheckpointInfo info =
      save_checkpoint(run_dir(), ParameterLayout(options_.model), params, options_, state_, optimizer, extra);
  prune_checkpoints(run_dir(), options_.keep_ckpts);
  last_checkpoint_ = info.dir;
  notify([&](TrainObserver& o) { o.on_checkpoint(*this, info); });
  return info;
}

void Trainer::print_sample() {
  if (!is_root() || options_.sample_prompt.empty() || options_.sample_tokens <= 0) return;
  comm::Context::BusyScope busy(impl_->comm, "generating the sample");
  Tokenizer tokenizer = Tokenizer::load((fs::path(run_dir()) / "tokenizer.model").string());
  const SampleOptions so{.max_tokens = options_.sample_tokens, .seed = options_.seed};
  try {
    std::unique_ptr<Gpt<float>> whole;  // under model parallelism: the last checkpoint, whole
    if (impl_->model_parallel()) {
      whole = std::make_unique<Gpt<float>>(options_.model);
      load_checkpoint_weights(last_checkpoint_, whole.get());
    }
    fmt::print("sample: {}\n",
               sample_text(whole ? *whole : impl_->model, tokenizer, options_.sample_prompt, so));
  } catch (const Error& e) {
    log_warn("no sample: {}", e.what());
  }
}

// Observers run on rank 0 only; a halt they ask for stops every rank at the same step.
bool Trainer::agree_on_halt() {
  double halt = halt_reason_.empty() ? 0 : 1;
  comm::allreduce_sum(impl_->comm, &halt, 1, "agreeing whether to halt");
  if (halt > 0 && halt_reason_.empty()) halt_reason_ = "halted by rank 0";
  return halt > 0;
}

// Ends the run before options().steps, every rank at the same step: a checkpoint of it, the end event
// and one line saying why.
int Trainer::stop_early(const std::string& status, const std::string& reason, int exit_code) {
  checkpoint();
  nlohmann::json summary = {{"status", status}, {"step", state_.step}, {"reason", reason}};
  summary.update(impl_->energy.finish(impl_->comm).to_json());
  notify([&](TrainObserver& o) { o.on_end(*this, summary); });
  if (is_root()) {
    fmt::print(stderr, "triad: {} at step {}: {}; checkpoint {}\n", status, state_.step, reason,
               last_checkpoint_);
  }
  return exit_code;
}

int Trainer::run() {
  nlohmann::json run = {{"run_dir", run_dir()},      {"options", options_.to_json()},
                        {"start_step", state_.step}, {"data_manifest_sha256", impl_->data_manifest_sha256},
                        {"triad_version", kVersion}, {"host", host_name()}};
  notify([&](TrainObserver& o) { o.on_start(*this, run); });
  while (state_.step < options_.steps) {
    test_signal_hook(state_.step + 1);
    train_step();
    const int step = state_.step;
    const bool last = step == options_.steps;
    if (options_.eval_every > 0 && (step % options_.eval_every == 0 || last)) run_eval();
    if (agree_on_halt()) return stop_early("halted", halt_reason_, kExitHalted);
    if (preempted_ && !last) return stop_early("preempted", stop_signal_name(stop_signal()), kExitPreempted);
    if (!impl_->move_to.empty() && !last) {
      move_stages();  // writes this step's checkpoint on the way (and rebuilds impl_)
    } else if ((options_.ckpt_every > 0 && step % options_.ckpt_every == 0) || last) {
      checkpoint();
    }
  }
  Impl& s = *impl_;
  const double seconds = seconds_since(s.started);
  nlohmann::json summary = {{"status", "completed"},
                            {"step", state_.step},
                            {"loss", state_.loss},
                            {"seconds", seconds},
                            {"checkpoint", last_checkpoint_},
                            {"peak_rss_bytes", peak_rss_bytes()}};
  summary.update(s.energy.finish(s.comm).to_json());
  notify([&](TrainObserver& o) { o.on_end(*this, summary); });
  print_sample();
  return 0;
}

}  // namespace triad
