#include "triad/train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include "triad/comm/collectives.h"
#include "triad/comm/grad_sync.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"
#include "triad/core/parallel.h"
#include "triad/core/progress.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"
#include "triad/data/tokenizer.h"
#include "triad/model/generate.h"
#include "triad/train/dp_sgd.h"
#include "triad/train/evaluate.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char buffer[256] = {};
  gethostname(buffer, sizeof buffer - 1);
  return buffer;
}

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", path, e.what());
  }
}

// The model's parameter blocks as gradient ranges (the unit of buckets), with their weight matrices.
std::vector<comm::GradRange> gradient_blocks(const ParameterLayout& layout) {
  std::vector<comm::GradRange> blocks;
  for (const ParamBlock& b : layout.blocks()) blocks.push_back({b.offset, b.count, {}});
  for (const TensorSpec& t : layout.tensors()) {
    if (t.shape.size() != 2) continue;
    blocks[static_cast<size_t>(t.block)].matrices.push_back(
        {t.offset, static_cast<size_t>(t.shape[0]), static_cast<size_t>(t.shape[1])});
  }
  return blocks;
}

}  // namespace

// Data parallelism, when the job has more than one rank: each rank computes the gradient of its B / world
// sequences, GradSync averages them bucket by bucket during the backward, and every rank applies the same
// update (ZeRO-1: each rank updates its shard of the parameters, then they are all-gathered). The owned
// range of the optimizer is the whole buffer except under ZeRO-1.
struct Trainer::Impl {
  Impl(const GptConfig& config, comm::Context& context, bool zero1)
      : comm(context),
        model(config),
        shards(comm::shard_layout(model.num_params(), zero1 ? context.world() : 1)),
        shard(zero1 ? context.rank() : 0),
        optimizer(model.layout(), shards.offset(shard), shards.count(shard)) {}
  comm::Context& comm;
  Gpt<float> model;
  comm::ShardLayout shards;
  int shard;
  AdamW optimizer;
  comm::BucketPlan buckets;
  std::unique_ptr<comm::GradSync> sync;  // only with more than one rank
  // Per bucket: its codec keeps error feedback (top-K, PowerSGD), so it starts after the backward, clipped
  // by this rank's own gradient norm (train_step).
  std::vector<char> clip_first;
  std::unique_ptr<TokenDataset> train, val;
  std::unique_ptr<Sampler> sampler;
  std::string data_manifest_sha256;
  std::vector<int32_t> windows, inputs, targets;
  std::unique_ptr<RematController> remat;
  std::unique_ptr<DpSgd> dp;  // with --dp-noise
  double ema_step_seconds = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

Trainer::Trainer(TrainOptions options) : options_(std::move(options)) {}
Trainer::~Trainer() = default;

bool Trainer::is_root() const {
  return impl_->comm.rank() == 0;
}

// `resumed` (with its directory) when continuing a run: the codecs' state comes back from it.
void Trainer::start_sync(const CheckpointManifest* resumed, const std::string& resume_dir) {
  Impl& s = *impl_;
  const int world = s.comm.world();
  if (world > 1) {
    s.buckets = comm::plan_buckets(gradient_blocks(s.model.layout()), options_.comm.bucket_mb);
    s.sync =
        std::make_unique<comm::GradSync>(s.comm, s.model.grads(), s.model.num_params(), s.buckets.buckets,
                                         comm::grad_sync_options(options_.comm, options_.seed));
  }
  // The buckets that travel top-K (all of them, or auto's choices) take --topk-beta1 and --topk-lr-scale.
  int topk_buckets = 0;
  s.clip_first.assign(s.buckets.buckets.size(), 0);
  for (size_t b = 0; s.sync && b < s.buckets.buckets.size(); ++b) {
    const comm::CodecSpec codec = comm::parse_codec_spec(s.sync->bucket_codecs()[b]);
    s.clip_first[b] = options_.clip > 0 && codec.keeps_error_feedback();
    if (codec.kind != comm::CodecKind::kTopK) continue;
    s.optimizer.override_range(s.buckets.buckets[b].offset, s.buckets.buckets[b].end(), options_.topk_beta1,
                               options_.topk_lr_scale);
    ++topk_buckets;
  }
  if (resumed) {
    const CheckpointManifest& manifest = *resumed;
    const int saved_world = manifest.json.value("/grad_sync/world"_json_pointer, 1);
    const size_t saved_buckets = manifest.json.value("/grad_sync/buckets"_json_pointer, size_t{0});
    comm::SyncState state;
    state.steps = manifest.json.value("/grad_sync/steps"_json_pointer, int64_t{0});
    state.buckets = load_grad_sync_state(resume_dir, s.comm.rank(), saved_buckets);
    bool has_residuals = false;
    for (const auto& b : state.buckets) has_residuals |= !b.empty();
    if (has_residuals && saved_world != world) {
      fail_usage(
          "--resume {}: the checkpoint keeps the error-feedback residuals of {} ranks; resume it with "
          "mpirun -np {}",
          resume_dir, saved_world, saved_world);
    }
    if (s.sync && saved_world == world) s.sync->load_state(state);
  }
  if (world == 1) return;
  log_info("data parallel: {} ranks x {} sequences, {} buckets of gradients, --grad-compression {}{}{}",
           s.comm.world(), options_.batch / s.comm.world(), s.buckets.buckets.size(),
           options_.comm.grad_compression,
           topk_buckets ? fmt::format(" ({} top-K bucket{}: AdamW beta1 {:g}, lr x {:g}, {}-step warm-up; "
                                      "--topk-beta1, --topk-lr-scale, --topk-warmup)",
                                      topk_buckets, topk_buckets > 1 ? "s" : "", options_.topk_beta1,
                                      options_.topk_lr_scale, options_.comm.topk_warmup)
                        : std::string(),
           options_.comm.zero == 1 ? fmt::format(", ZeRO-1: {} of optimizer state per rank (of {})",
                                                 format_bytes(s.optimizer.state_bytes()),
                                                 format_bytes(2 * s.model.num_params() * sizeof(float)))
                                   : std::string());
}

void Trainer::start_remat() {
  if (!options_.remat.active()) return;
  impl_->remat = std::make_unique<RematController>(
      impl_->model, options_.remat, options_.micro_batch(impl_->comm.world()), options_.model.seq_len,
      is_root() ? (fs::path(run_dir()) / "remat_plan.jsonl").string() : std::string(), state_.step);
  log_info("{}", impl_->remat->summary());
}

void Trainer::open_data() {
  const std::string manifest_path = (fs::path(options_.data_dir) / "manifest.json").string();
  impl_->train = std::make_unique<TokenDataset>(TokenDataset::open(options_.data_dir, "train"));
  impl_->val = std::make_unique<TokenDataset>(TokenDataset::open(options_.data_dir, "val"));
  impl_->data_manifest_sha256 = sha256_file_hex(manifest_path);
  if (static_cast<int>(impl_->train->vocab_size()) != options_.model.vocab) {
    fail("{}: the data's vocabulary has {} tokens, the model {}", options_.data_dir,
         impl_->train->vocab_size(), options_.model.vocab);
  }
  SamplerOptions so{.seq_len = options_.model.seq_len,
                    .seed = options_.seed,
                    .shuffle = true,
                    .rank = impl_->comm.rank(),
                    .world = impl_->comm.world()};
  impl_->sampler = std::make_unique<Sampler>(*impl_->train, so);
  if (options_.dp()) {
    // Every rank draws the same batches and noise keys: rank 0's secrets (dp_sgd.h).
    DpSecrets secrets = DpSecrets::draw();
    comm::broadcast_from_root(impl_->comm, secrets.sampling.data(), 4, "sending the DP-SGD sampling secret");
    comm::broadcast_from_root(impl_->comm, secrets.noise.data(), 4, "sending the DP-SGD noise secret");
    impl_->dp = std::make_unique<DpSgd>(DpSgdConfig{options_.dp_noise, options_.dp_clip, options_.dp_delta,
                                                    options_.batch, impl_->comm.rank(), impl_->comm.world()},
                                        *impl_->sampler, secrets);
  }
  const size_t rows = static_cast<size_t>(options_.batch / impl_->comm.world());
  impl_->windows.resize(rows * (options_.model.seq_len + 1));
  impl_->inputs.resize(rows * options_.model.seq_len);
  impl_->targets.resize(impl_->inputs.size());
}

std::unique_ptr<Trainer> Trainer::start(const TrainOptions& given, bool force) {
  TrainOptions options = given;
  comm::Context& context = comm::init(comm::context_options(options.comm));
  options.validate(context.world());
  const bool root = context.rank() == 0;
  const std::string manifest_path = (fs::path(options.data_dir) / "manifest.json").string();
  if (!path_exists(manifest_path)) {
    fail_usage(
        "--data {} is not a prepared data directory (no manifest.json); create it with 'triad prepare'",
        options.data_dir);
  }
  nlohmann::json data_manifest = read_json(manifest_path);
  options.model.vocab = data_manifest.at("tokenizer").at("vocab_size").get<int>();
  const int window = data_manifest.value("max_tokens", options.model.seq_len);
  if (options.model.seq_len > window) {
    fail_usage(
        "--seq-len {} exceeds the training window of {} tokens that 'triad prepare --max-tokens' recorded in "
        "{}",
        options.model.seq_len, window, manifest_path);
  }
  std::error_code ec;
  if (root && fs::exists(options.out_dir, ec) && !fs::is_empty(options.out_dir, ec)) {
    if (!force) {
      fail_usage(
          "run directory {} already exists; continue it with --resume {}, or pass --force to start over",
          options.out_dir, options.out_dir);
    }
    fs::remove_all(options.out_dir, ec);
    if (ec) fail("cannot remove {}: {}", options.out_dir, ec.message());
  }
  if (root) make_dirs(options.out_dir);
  comm::barrier(context, "waiting for rank 0 to create the run directory");
  set_threads(options.threads);

  std::unique_ptr<Trainer> t(new Trainer(options));
  t->impl_ = std::make_unique<Impl>(options.model, context, options.comm.zero == 1);
  t->open_data();
  // Every rank initialises the same weights from the seed.
  t->impl_->model.init_weights(options.seed);
  t->start_remat();
  t->start_sync(nullptr, "");
  if (!root) return t;
  write_file_atomic((fs::path(options.out_dir) / "tokenizer.model").string(),
                    read_file((fs::path(options.data_dir) / "tokenizer.model").string()));
  nlohmann::json run = {{"format", "triad-run"},
                        {"triad_version", kVersion},
                        {"host", host_name()},
                        {"options", options.to_json()},
                        {"model", options.model.describe()},
                        {"data_manifest_sha256", t->impl_->data_manifest_sha256},
                        {"ranks", context.world()}};
  write_file_atomic((fs::path(options.out_dir) / "run.json").string(), run.dump(2) + "\n");
  return t;
}

std::unique_ptr<Trainer> Trainer::resume(const ResumeRequest& request, const comm::CommOptions& how) {
  comm::Context& context = comm::init(comm::context_options(how));
  std::string dir = latest_checkpoint(request.run_dir);
  if (dir.empty()) {
    fail_usage("--resume {}: no checkpoint found under {}/checkpoints (nothing to resume)", request.run_dir,
               request.run_dir);
  }
  CheckpointManifest manifest = read_checkpoint_manifest(dir);
  TrainOptions options = manifest.options;
  // Flags that may change on resume (how, not what: remat changes memory, never a gradient); everything
  // else must match the run.
  nlohmann::json stored = options.to_json();
  for (const auto& [key, value] : request.overrides.items()) {
    static const std::set<std::string> free = {
        "steps",        "threads",       "log_every",     "eval_every", "ckpt_every",        "keep_ckpts",
        "eval_batches", "sample_prompt", "sample_tokens", "remat",      "activation_memory", "replan_every"};
    if (free.count(key) || comm::CommOptions::may_change_on_resume(key)) continue;
    const nlohmann::json& have = stored["model"].contains(key) ? stored["model"][key] : stored[key];
    if (have != value) {
      fail_usage(
          "--resume {}: the run was trained with {} = {}, the command asks {} (a checkpoint of another "
          "configuration cannot continue)",
          request.run_dir, key, have.dump(), value.dump());
    }
  }
  // The command's values (those not free were checked equal above; model keys live under "model").
  nlohmann::json merged = stored;
  for (const auto& [key, value] : request.overrides.items()) {
    if (merged.contains(key)) merged[key] = value;
  }
  options = TrainOptions::from_json(merged, dir);
  options.comm.comm_timeout = how.comm_timeout;
  options.comm.comm_progress = how.comm_progress;
  options.comm.poll_us = how.poll_us;
  options.comm.topology = how.topology;
  options.comm.ranks_per_node = how.ranks_per_node;
  if (request.steps > 0) options.steps = request.steps;
  options.out_dir = request.run_dir;
  options.validate(context.world());
  set_threads(options.threads);

  std::unique_ptr<Trainer> t(new Trainer(options));
  t->impl_ = std::make_unique<Impl>(options.model, context, options.comm.zero == 1);
  t->open_data();
  if (manifest.json.value("data_manifest_sha256", "") != t->impl_->data_manifest_sha256) {
    log_warn("{}/manifest.json changed since the run started; resuming on the data as it is now",
             options.data_dir);
  }
  load_checkpoint_weights(dir, &t->impl_->model, &t->impl_->optimizer);
  t->state_ = manifest.state;
  t->impl_->sampler->restore(manifest.state.sampler);
  if (t->impl_->dp) t->impl_->dp->restore(manifest.state.dp, dir);
  t->last_checkpoint_ = dir;
  t->start_remat();
  t->start_sync(&manifest, dir);
  log_info("resuming {} from {} (step {} of {})", request.run_dir, dir, t->state_.step, options.steps);
  return t;
}

void Trainer::add_observer(std::unique_ptr<TrainObserver> observer) {
  observers_.push_back(std::move(observer));
}

const RdpAccountant* Trainer::privacy_ledger() const {
  return impl_->dp ? &impl_->dp->accountant() : nullptr;
}

void Trainer::request_halt(const std::string& reason) {
  if (halt_reason_.empty()) halt_reason_ = reason;
}

template <typename F>
void Trainer::notify(F&& f) {
  for (auto& o : observers_) f(*o);
}

void Trainer::train_step() {
  Impl& s = *impl_;
  Gpt<float>& model = s.model;
  const int world = s.comm.world();
  const int B = options_.batch, K = options_.grad_accum, mb = options_.micro_batch(world),
            T = options_.model.seq_len;
  const auto t0 = std::chrono::steady_clock::now();
  const float lr = learning_rate(options_, state_.step);
  model.arena().reset_peak();
  double recompute = 0;
  // Summed over ranks below. [0]: this rank's mean loss (DP-SGD: the sum of its examples' losses), [1]: Σ g²
  // over this rank's shard (ZeRO-1), [2], [3]: DP-SGD's examples and clipped examples on this rank.
  double sums[4] = {0, 0, 0, 0};
  const int rows = B / world;  // sequences this rank trains on (DP-SGD: see sums[2])
  if (s.dp) {
    // DP-SGD (dp_sgd.h): a Poisson-sampled batch, clipped per-example gradients and noise, into the grads.
    DpBatchStats dp = s.dp->step(model, T);
    sums[0] = dp.loss * dp.examples;
    sums[2] = dp.examples;
    sums[3] = dp.clipped;
  } else {
    s.sampler->next_batch(B, s.windows.data());
    split_windows(s.windows.data(), rows, T, s.inputs.data(), s.targets.data());
    model.zero_grads();
    // The last micro-batch's backward hands each bucket to GradSync as soon as its blocks are done, except
    // those with error feedback: what error feedback holds back escapes the clipping of the average below,
    // so an outlier batch's gradient would reach the weights unclipped over the following steps. Those wait
    // for this rank's whole gradient and are clipped by its norm first (DGC's local gradient clipping).
    const bool any_clip_first = std::find(s.clip_first.begin(), s.clip_first.end(), 1) != s.clip_first.end();
    double local_sq = 0;  // this rank's Σ g², bucket by bucket before GradSync overwrites them
    Gpt<float>::BlockDone on_block_done;
    if (s.sync) {
      on_block_done = [&](int block) {
        const int bucket = s.buckets.ready_after_block[static_cast<size_t>(block)];
        if (bucket < 0) return;
        const comm::GradRange& range = s.buckets.buckets[static_cast<size_t>(bucket)];
        if (any_clip_first) local_sq += sum_of_squares(model.grads() + range.offset, range.count);
        if (!s.clip_first[static_cast<size_t>(bucket)]) s.sync->bucket_ready(bucket);
      };
    }
    const float scale = 1.0f / static_cast<float>(static_cast<size_t>(rows) * T);
    for (int k = 0; k < K; ++k) {
      const size_t offset = static_cast<size_t>(k) * mb * T;
      sums[0] += model.forward(s.inputs.data() + offset, s.targets.data() + offset, mb, T) / K;
      model.backward(scale, k == K - 1 ? on_block_done : nullptr);
      recompute += model.recompute_seconds();
    }
    if (any_clip_first) {
      const double local_norm = std::sqrt(local_sq);
      for (size_t b = 0; b < s.clip_first.size(); ++b) {
        if (!s.clip_first[b]) continue;
        const comm::GradRange& range = s.buckets.buckets[b];
        if (local_norm > options_.clip) {
          scale_in_place(model.grads() + range.offset, range.count,
                         static_cast<float>(options_.clip / local_norm));
        }
        s.sync->bucket_ready(static_cast<int>(b));
      }
    }
  }
  uint64_t gather_bytes = 0;
  if (s.sync) s.sync->finish();  // grads: the average over ranks (ZeRO-1: in this rank's shard)
  const size_t own_begin = s.optimizer.offset(), own_end = own_begin + s.optimizer.count();
  const bool sharded = options_.comm.zero == 1 && world > 1;
  if (sharded) sums[1] = sum_of_squares(model.grads() + own_begin, own_end - own_begin);
  comm::allreduce_sum(s.comm, sums, 4, "step loss and gradient norm");
  double loss = sums[0] / world;
  if (s.dp) loss = sums[2] > 0 ? sums[0] / sums[2] : state_.loss;  // an empty batch measures no loss
  const double norm = sharded ? std::sqrt(sums[1]) : global_norm(model.grads(), model.num_params());
  const int step = state_.step + 1;
  if (!std::isfinite(loss) || !std::isfinite(norm)) {
    fail(
        "step {}: the loss is {} and the gradient norm {}; training stopped before the update. The last good "
        "checkpoint is {}",
        step, loss, norm,
        last_checkpoint_.empty() ? "none (no checkpoint was written yet)" : last_checkpoint_);
  }
  if (!s.dp && options_.clip > 0 && norm > options_.clip) {  // DP-SGD clipped each example instead
    scale_in_place(model.grads() + own_begin, own_end - own_begin, static_cast<float>(options_.clip / norm));
  }
  if (sharded) s.sync->before_update(model.params());
  s.optimizer.update(model.params(), model.grads(), lr, options_);
  if (sharded) gather_bytes = s.sync->gather_params(model.params());
  state_.step = step;
  state_.loss = loss;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.ema_step_seconds = s.ema_step_seconds == 0 ? seconds : 0.9 * s.ema_step_seconds + 0.1 * seconds;
  const double tokens_per_s = (s.dp ? sums[2] : static_cast<double>(rows) * world) * T / seconds;
  nlohmann::json record = {{"step", step},
                           {"loss", loss},
                           {"lr", lr},
                           {"grad_norm", norm},
                           {"tokens_per_s", tokens_per_s},
                           {"step_ms", seconds * 1e3},
                           {"peak_activation_bytes", model.arena().peak_bytes()},
                           {"peak_rss_bytes", peak_rss_bytes()},
                           {"optimizer_bytes", s.optimizer.state_bytes()}};
  if (s.sync) {
    const comm::StepStats& st = s.sync->stats();
    record["ranks"] = world;
    record["bytes_sent"] = st.bytes_sent + gather_bytes;
    record["comm_ms"] = st.comm_ms;
    record["comm_hidden_fraction"] = st.comm_hidden_fraction;
    record["codec"] = st.codec;
  }
  if (s.remat) s.remat->after_step(step, recompute, &record);
  if (s.dp) record.update(s.dp->record(static_cast<int>(sums[2]), static_cast<int>(sums[3])));
  notify([&](TrainObserver& o) { o.on_step(*this, record); });
  const bool last = step == options_.steps;
  if (!quiet() && (step == 1 || last || (options_.log_every > 0 && step % options_.log_every == 0))) {
    const double eta = s.ema_step_seconds * (options_.steps - step);
    fmt::print(stderr, "step {:>5}/{} loss {:.4f} lr {:.2e} norm {:.2f} {:.0f} tok/s {:.0f} ms ETA {}\n",
               step, options_.steps, loss, lr, norm, tokens_per_s, seconds * 1e3, format_duration(eta));
  }
}

// Collective: the same sequences at any world size, each rank computing its share of the batches; rank 0
// logs the result.
void Trainer::run_eval() {
  Impl& s = *impl_;
  EvalShare share = evaluate_share(s.model, *s.val, options_.eval_batches, options_.micro_batch(),
                                   options_.model.seq_len, s.comm.rank(), s.comm.world());
  comm::allreduce_sum(s.comm, share.batch_loss.data(), static_cast<int>(share.batch_loss.size()),
                      "evaluation");
  if (!is_root()) return;
  EvalResult r = combine_shares(share);
  nlohmann::json record = {
      {"step", state_.step}, {"val_loss", r.loss}, {"val_ppl", r.perplexity()}, {"val_tokens", r.tokens}};
  log_info("eval  step {:>5} val_loss {:.4f} val_ppl {:.2f} ({} tokens)", state_.step, r.loss, r.perplexity(),
           r.tokens);
  notify([&](TrainObserver& o) { o.on_eval(*this, record); });
}

// Collective: every rank's part of the state goes to rank 0, which writes the checkpoint.
CheckpointInfo Trainer::checkpoint() {
  Impl& s = *impl_;
  state_.sampler = s.sampler->state();
  if (s.dp) state_.dp = s.dp->state();
  CheckpointExtras extras;
  // ZeRO-1: the moments, gathered from their shards; otherwise every rank holds them all.
  std::vector<float> m, v;
  OptimizerMoments moments{s.optimizer.m().data(), s.optimizer.v().data(), s.optimizer.steps()};
  if (options_.comm.zero == 1 && s.comm.world() > 1) {
    for (auto [shard, full] : {std::pair{&s.optimizer.m(), &m}, std::pair{&s.optimizer.v(), &v}}) {
      full->assign(s.model.num_params(), 0.0f);
      std::copy(shard->begin(), shard->end(), full->begin() + static_cast<ptrdiff_t>(s.optimizer.offset()));
      comm::all_gather_shards(s.comm, full->data(), s.shards);
    }
    moments.m = m.data();
    moments.v = v.data();
  }
  extras.optimizer = &moments;
  if (s.sync) {
    comm::SyncState sync = s.sync->save_state();
    // Gathered bucket by bucket: rank r's state of bucket b lands in grad_sync[r][b].
    for (size_t b = 0; b < sync.buckets.size(); ++b) {
      auto per_rank = comm::gather_to_root(s.comm, sync.buckets[b], "checkpoint: gradient codec state");
      extras.grad_sync.resize(per_rank.size());
      for (size_t r = 0; r < per_rank.size(); ++r) extras.grad_sync[r].push_back(std::move(per_rank[r]));
    }
    extras.manifest["grad_sync"] = {{"world", s.comm.world()},
                                    {"steps", sync.steps},
                                    {"buckets", sync.buckets.size()},
                                    {"codec", options_.comm.grad_compression}};
  }
  if (!is_root()) return {};
  // The other ranks wait in the next step's collectives; a slow disk must not look like a hung rank.
  comm::Context::BusyScope busy(s.comm, fmt::format("writing checkpoint step {}", state_.step));
  extras.manifest["data_manifest_sha256"] = s.data_manifest_sha256;
  extras.manifest["tokenizer_sha256"] = sha256_file_hex((fs::path(run_dir()) / "tokenizer.model").string());
  CheckpointInfo info = save_checkpoint(run_dir(), s.model, options_, state_, extras);
  prune_checkpoints(run_dir(), options_.keep_ckpts);
  last_checkpoint_ = info.dir;
  notify([&](TrainObserver& o) { o.on_checkpoint(*this, info); });
  return info;
}

void Trainer::print_sample() {
  if (!is_root() || options_.sample_prompt.empty() || options_.sample_tokens <= 0) return;
  comm::Context::BusyScope busy(impl_->comm, "generating the sample");
  Tokenizer tokenizer = Tokenizer::load((fs::path(run_dir()) / "tokenizer.model").string());
  std::vector<int> ids;
  tokenizer.encode(options_.sample_prompt, &ids);
  if (ids.empty()) return;
  SampleOptions so{
      .max_tokens = options_.sample_tokens, .temperature = 0.8f, .top_k = 40, .seed = options_.seed};
  std::vector<int32_t> prompt(ids.begin(), ids.end());
  if (static_cast<int>(prompt.size()) >= options_.model.seq_len) return;
  std::vector<int32_t> out = generate(impl_->model, prompt, so, tokenizer.eos_id());
  std::vector<int> all(prompt.begin(), prompt.end());
  all.insert(all.end(), out.begin(), out.end());
  fmt::print("sample: {}\n", tokenizer.decode(all));
}

// Observers run on rank 0 only; a halt they ask for stops every rank at the same step.
bool Trainer::agree_on_halt() {
  double halt = halt_reason_.empty() ? 0 : 1;
  comm::allreduce_sum(impl_->comm, &halt, 1, "agreeing whether to halt");
  if (halt > 0 && halt_reason_.empty()) halt_reason_ = "halted by rank 0";
  return halt > 0;
}

int Trainer::run() {
  Impl& s = *impl_;
  nlohmann::json run = {{"run_dir", run_dir()},      {"options", options_.to_json()},
                        {"start_step", state_.step}, {"data_manifest_sha256", s.data_manifest_sha256},
                        {"triad_version", kVersion}, {"host", host_name()}};
  log_info("train {}: {}, {} steps of {} x {} tokens, {} threads", run_dir(), options_.model.describe(),
           options_.steps, options_.batch, options_.model.seq_len, options_.threads);
  notify([&](TrainObserver& o) { o.on_start(*this, run); });
  while (state_.step < options_.steps) {
    train_step();
    const int step = state_.step;
    const bool last = step == options_.steps;
    if (options_.eval_every > 0 && (step % options_.eval_every == 0 || last)) run_eval();
    if (agree_on_halt()) {
      checkpoint();
      nlohmann::json summary = {{"status", "halted"}, {"step", step}, {"reason", halt_reason_}};
      notify([&](TrainObserver& o) { o.on_end(*this, summary); });
      if (is_root()) {
        fmt::print(stderr, "triad: halted at step {}: {}; checkpoint {}\n", step, halt_reason_,
                   last_checkpoint_);
      }
      return 3;
    }
    if ((options_.ckpt_every > 0 && step % options_.ckpt_every == 0) || last) checkpoint();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count();
  nlohmann::json summary = {{"status", "completed"},
                            {"step", state_.step},
                            {"loss", state_.loss},
                            {"seconds", seconds},
                            {"checkpoint", last_checkpoint_},
                            {"peak_rss_bytes", peak_rss_bytes()}};
  notify([&](TrainObserver& o) { o.on_end(*this, summary); });
  log_info("done: {} steps in {}, final loss {:.4f}, checkpoint {}", state_.step, format_duration(seconds),
           state_.loss, last_checkpoint_);
  print_sample();
  return 0;
}

}  // namespace triad
