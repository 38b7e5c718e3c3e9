#include "triad/parallel/distributed_optimizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "triad/comm/collectives.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/kernels/vector_ops.h"
#include "triad/model/quantized_state.h"

namespace triad::parallel {

namespace {

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

std::unique_ptr<comm::GradSync> make_sync(comm::Context& context, Gpt<float>& model,
                                          const comm::BucketPlan& buckets,
                                          const DistributedOptimizerOptions& options) {
  comm::GradSyncOptions sync = comm::grad_sync_options(options.comm, options.seed);
  if (options.states == StatePrecision::k8Bit && options.comm.zero == 1) {
    sync.shard_cuts = quantization_boundaries(model.layout(), 0, model.num_params());
  }
  return std::make_unique<comm::GradSync>(context, model.grads(), model.num_params(), buckets.buckets, sync);
}

// The index of boundary `at` in `blocks` (it is one).
size_t block_index(const std::vector<size_t>& blocks, size_t at) {
  return static_cast<size_t>(std::lower_bound(blocks.begin(), blocks.end(), at) - blocks.begin());
}

// The ranges of the flat buffer this rank updates: its part of every bucket under ZeRO-1, or everything.
std::vector<comm::ShardLayout::Range> owned_ranges(const comm::GradSync& sync, const comm::Context& context,
                                                   bool sharded, size_t count) {
  if (!sharded) return {{0, count}};
  std::vector<comm::ShardLayout::Range> owned = sync.shards().owned(context.rank());
  if (owned.empty()) owned.push_back({0, 0});  // buckets too small to reach this rank: an AdamW of nothing
  return owned;
}

}  // namespace

DistributedOptimizer::DistributedOptimizer(comm::Context& context, Gpt<float>& model,
                                           const DistributedOptimizerOptions& options,
                                           comm::Context* model_group, comm::Context* tied)
    : context_(context),
      model_group_(model_group && model_group->world() > 1 ? model_group : nullptr),
      tied_(tied),
      model_(model),
      options_(options),
      buckets_(comm::plan_buckets(gradient_blocks(model.layout()), options.comm.bucket_mb)),
      sync_(make_sync(context, model, buckets_, options)),
      sharded_(options.comm.zero == 1 && context.world() > 1) {
  for (const auto& range : owned_ranges(*sync_, context, sharded_, model.num_params()))
    optimizers_.emplace_back(model.layout(), range.offset, range.count, options.states);
  if (options.states == StatePrecision::k8Bit)
    all_blocks_ = quantization_boundaries(model.layout(), 0, model.num_params());
  const size_t n = buckets_.buckets.size();
  clip_first_.assign(n, 0);
  counted_.assign(n, 0);
  tied_bucket_.assign(n, 0);
  if (tied_) {
    const TensorSpec* wte = model.layout().find("wte.weight");
    for (size_t b = 0; b < n; ++b) {
      const comm::GradRange& r = buckets_.buckets[b];
      tied_bucket_[b] = wte->offset >= r.offset && wte->offset < r.end();
    }
  }
  if (context.world() == 1) return;  // one process: no codec runs
  // The buckets that travel top-K (all of them, or auto's choices) take their own β1 and learning rate.
  for (size_t b = 0; b < n; ++b) {
    const comm::CodecSpec& codec = sync_->bucket_codecs()[b];
    clip_first_[b] = options.clip > 0 && codec.keeps_error_feedback();
    if (codec.kind != comm::CodecKind::kTopK) continue;
    for (AdamW& optimizer : optimizers_)
      optimizer.override_range(buckets_.buckets[b].offset, buckets_.buckets[b].end(), options.topk_beta1,
                               options.topk_lr_scale);
    ++topk_buckets_;
  }
  any_clip_first_ = std::find(clip_first_.begin(), clip_first_.end(), 1) != clip_first_.end();
}

DistributedOptimizer::~DistributedOptimizer() = default;

std::string DistributedOptimizer::describe(int sequences_per_rank) const {
  const DistributedOptimizerOptions& o = options_;
  std::string topk, zero;
  if (topk_buckets_ > 0) {
    topk = fmt::format(
        " ({} top-K bucket{}: AdamW beta1 {:g}, lr x {:g}, {}-step warm-up; --topk-beta1, --topk-lr-scale, "
        "--topk-warmup)",
        topk_buckets_, topk_buckets_ > 1 ? "s" : "", o.topk_beta1, o.topk_lr_scale, o.comm.topk_warmup);
  }
  if (o.comm.zero == 1) {
    const size_t whole = o.states == StatePrecision::k8Bit
                             ? 2 * quantized_moment_bytes(model_.num_params(), all_blocks_.size() - 1)
                             : 2 * model_.num_params() * sizeof(float);
    zero = fmt::format(", ZeRO-1: {} of optimizer state per rank (of {})", format_bytes(state_bytes()),
                       format_bytes(whole));
  }
  return fmt::format(
      "data parallel: {} ranks x {} sequences, {} buckets of gradients, --grad-compression {}{}{}",
      context_.world(), sequences_per_rank, buckets_.buckets.size(), o.comm.grad_compression, topk, zero);
}

size_t DistributedOptimizer::fp32_moment_at(size_t offset) const {
  return options_.states == StatePrecision::k8Bit ? fp32_state_count(model_.layout(), 0, offset) : offset;
}

uint64_t DistributedOptimizer::state_bytes() const {
  uint64_t bytes = 0;
  for (const AdamW& optimizer : optimizers_) bytes += optimizer.state_bytes();
  return bytes;
}

Gpt<float>::BlockDone DistributedOptimizer::hook() {
  return [this](int block) { on_block_done(block); };
}

void DistributedOptimizer::on_block_done(int block) {
  const int bucket = buckets_.ready_after_block[static_cast<size_t>(block)];
  if (bucket < 0) return;
  const size_t b = static_cast<size_t>(bucket);
  // This rank's Σ g² needs every bucket as it is before the reduction overwrites it with the average.
  if (any_clip_first_) {
    local_sq_ += sum_of_squares(model_.grads() + buckets_.buckets[b].offset, buckets_.buckets[b].count);
    counted_[b] = 1;
  }
  if (!clip_first_[b] && !tied_bucket_[b]) sync_->bucket_ready(bucket);  // the others: finish_reduction()
}

void DistributedOptimizer::add_tied_embedding_gradients() {
  if (!tied_) return;
  const TensorSpec* wte = model_.layout().find("wte.weight");
  comm::allreduce_sum(*tied_, model_.grads() + wte->offset, wte->count,
                      "adding the tied embedding's gradients");
  for (size_t b = 0; b < tied_bucket_.size(); ++b) {
    if (tied_bucket_[b] && !clip_first_[b]) sync_->bucket_ready(static_cast<int>(b));
  }
}

void DistributedOptimizer::finish_reduction() {
  add_tied_embedding_gradients();
  if (any_clip_first_) {
    // DGC's local gradient clipping: what error feedback holds back escapes the clipping of the average,
    // so an outlier batch would reach the weights unclipped over the following steps.
    for (size_t b = 0; b < clip_first_.size(); ++b) {
      if (counted_[b]) continue;  // counted by the hook (DP-SGD's backward calls none)
      local_sq_ += sum_of_squares(model_.grads() + buckets_.buckets[b].offset, buckets_.buckets[b].count);
    }
    const double local_norm = std::sqrt(local_sq_);
    for (size_t b = 0; b < clip_first_.size(); ++b) {
      if (!clip_first_[b]) continue;
      const comm::GradRange& range = buckets_.buckets[b];
      if (local_norm > options_.clip) {
        scale_in_place(model_.grads() + range.offset, range.count,
                       static_cast<float>(options_.clip / local_norm));
      }
      sync_->bucket_ready(static_cast<int>(b));
    }
  }
  sync_->finish();
  local_sq_ = 0;
  std::fill(counted_.begin(), counted_.end(), 0);
}

double DistributedOptimizer::grad_norm() {
  if (!model_group_ && !sharded_) return global_norm(model_.grads(), model_.num_params());
  double sq = 0;
  for (const AdamW& optimizer : optimizers_) {
    const size_t begin = optimizer.offset(), end = begin + optimizer.count();
    if (!model_group_) {
      sq += sum_of_squares(model_.grads() + begin, optimizer.count());
      continue;
    }
    // Each element of the model once: replicated tensors from tensor rank 0, the tied copy not at all.
    for (const TensorSpec& t : model_.layout().tensors()) {
      if (t.tied_copy || (t.replicated && model_.shard().tensor_rank != 0)) continue;
      const size_t from = std::max(begin, t.offset), to = std::min(end, t.offset + t.count);
      if (from < to) sq += sum_of_squares(model_.grads() + from, to - from);
    }
  }
  if (sharded_) comm::allreduce_sum(context_, &sq, 1, "gradient norm");
  if (model_group_) comm::allreduce_sum(*model_group_, &sq, 1, "gradient norm over the model's parts");
  return std::sqrt(sq);
}

void DistributedOptimizer::step(float lr, double norm) {
  for (AdamW& optimizer : optimizers_) {
    if (options_.clip > 0 && norm > options_.clip) {
      scale_in_place(model_.grads() + optimizer.offset(), optimizer.count(),
                     static_cast<float>(options_.clip / norm));
    }
  }
  if (sharded_) sync_->before_update(model_.params());
  for (AdamW& optimizer : optimizers_) optimizer.update(model_.params(), model_.grads(), lr, options_.adamw);
  const uint64_t gather_bytes = sharded_ ? sync_->gather_params(model_.params()) : 0;
  const comm::StepStats& st = sync_->stats();
  stats_ = {.ranks = context_.world(),
            .bytes_sent = st.bytes_sent + gather_bytes,
            .comm_ms = st.comm_ms,
            .comm_hidden_fraction = st.comm_hidden_fraction,
            .codec = st.codec};
}

OptimizerState DistributedOptimizer::state() {
  OptimizerState s;
  s.states = options_.states;
  // ZeRO-1: the moments, gathered from their shards; otherwise every rank holds them all.
  const bool eight_bit = s.states == StatePrecision::k8Bit;
  if (eight_bit) {
    gather_quantized(&AdamW::m8, &s.m8);
    gather_quantized(&AdamW::v8, &s.v8);
  }
  // The fp32 moments, each part at its place (zeros elsewhere): the whole buffer's, or under 8-bit the
  // compact run of the embeddings and small tensors, whose parts are not one rank's contiguous range (so
  // summed).
  for (auto [part, full] : {std::pair{&AdamW::m, &s.m}, std::pair{&AdamW::v, &s.v}}) {
    full->assign(fp32_moment_at(model_.num_params()), 0.0f);
    for (AdamW& optimizer : optimizers_) {
      const std::vector<float>& mine = (optimizer.*part)();
      std::copy(mine.begin(), mine.end(),
                full->begin() + static_cast<ptrdiff_t>(fp32_moment_at(optimizer.offset())));
    }
    if (sharded_ && eight_bit) {
      comm::allreduce_sum(context_, full->data(), full->size(), "checkpoint: fp32 optimizer state");
    } else if (sharded_) {
      comm::all_gather_shards(context_, full->data(), sync_->shards());
    }
  }
  add_counters_and_codec_state(&s);
  return s;
}

void DistributedOptimizer::with_state(const std::function<void(const OptimizerState&)>& use) {
  if (sharded_) {
    use(state());
    return;
  }
  OptimizerState s;
  s.states = options_.states;
  add_counters_and_codec_state(&s);
  AdamW& optimizer = optimizers_.front();  // unsharded: one, over everything
  // Unsharded, this rank's moments are the whole ones (fp32 over the flat buffer, or 8-bit codes with the
  // compact fp32 moments of the tensors that keep them): moved, not copied, and back however `use` ends.
  s.m = std::move(optimizer.m());
  s.v = std::move(optimizer.v());
  s.m8 = std::move(optimizer.m8());
  s.v8 = std::move(optimizer.v8());
  struct GiveBack {
    OptimizerState& s;
    AdamW& to;
    ~GiveBack() {
      to.m() = std::move(s.m);
      to.v() = std::move(s.v);
      to.m8() = std::move(s.m8);
      to.v8() = std::move(s.v8);
    }
  } give_back{s, optimizer};
  use(s);
}

// Collective: the codec states are gathered on rank 0.
void DistributedOptimizer::add_counters_and_codec_state(OptimizerState* s) {
  s->adam_steps = optimizers_.front().steps();
  s->world = context_.world();
  s->codec = options_.comm.grad_compression;
  comm::SyncState sync = sync_->save_state();
  s->sync_steps = sync.steps;
  // Gathered bucket by bucket: rank r's state of bucket b lands in residuals[r][b].
  s->residuals.assign(static_cast<size_t>(context_.world()), {});
  for (size_t b = 0; b < sync.buckets.size(); ++b) {
    auto per_rank = comm::gather_to_root(context_, sync.buckets[b], "checkpoint: gradient codec state");
    for (size_t r = 0; r < per_rank.size(); ++r) s->residuals[r].push_back(std::move(per_rank[r]));
  }
}

void DistributedOptimizer::gather_quantized(QuantizedMoment& (AdamW::*part)(), QuantizedMoment* whole) {
  const size_t n = model_.num_params(), blocks = all_blocks_.size() - 1;
  if (!sharded_) {
    *whole = (optimizers_.front().*part)();
    return;
  }
  // The codes travel as floats (0..255, exact) in the all-gather of the fp32 moments; a checkpoint's cost.
  std::vector<float> codes(n, 0.0f), absmax(blocks, 0.0f);
  for (AdamW& optimizer : optimizers_) {
    const QuantizedMoment& mine = (optimizer.*part)();
    std::copy(mine.codes.begin(), mine.codes.end(),
              codes.begin() + static_cast<ptrdiff_t>(optimizer.offset()));
    std::copy(mine.absmax.begin(), mine.absmax.end(),
              absmax.begin() + static_cast<ptrdiff_t>(block_index(all_blocks_, optimizer.offset())));
  }
  comm::all_gather_shards(context_, codes.data(), sync_->shards());
  comm::ShardLayout block_shards;  // the same parts, counted in blocks
  for (const std::vector<size_t>& at : sync_->shards().parts) {
    std::vector<size_t>& in_blocks = block_shards.parts.emplace_back();
    for (size_t boundary : at) in_blocks.push_back(block_index(all_blocks_, boundary));
  }
  comm::all_gather_shards(context_, absmax.data(), block_shards);
  whole->codes.assign(codes.begin(), codes.end());
  whole->absmax = std::move(absmax);
}

void DistributedOptimizer::load(const OptimizerState& saved, const std::string& where) {
  if (saved.states != options_.states) {
    // --optimizer-states cannot change on resume; a checkpoint disagreeing with its own options is damaged.
    fail_usage("--resume {}: the checkpoint holds {} optimizer states, the run --optimizer-states {}", where,
               state_precision_name(saved.states), state_precision_name(options_.states));
  }
  const size_t n = model_.num_params();
  if (saved.states == StatePrecision::k8Bit) {
    const size_t blocks = all_blocks_.size() - 1;
    for (const QuantizedMoment* from : {&saved.m8, &saved.v8}) {
      if (from->codes.size() != n || from->absmax.size() != blocks) {
        fail(
            "{}: the 8-bit optimizer state holds {} codes and {} scales; the model has {} parameters in {} "
            "blocks",
            where, from->codes.size(), from->absmax.size(), n, blocks);
      }
    }
    const size_t all = fp32_moment_at(n);
    if (saved.m.size() != all || saved.v.size() != all) {
      fail("{}: the optimizer state holds {} fp32 moments; the model keeps {} (embeddings, small tensors)",
           where, saved.m.size(), all);
    }
  } else if (saved.m.size() != n || saved.v.size() != n) {
    fail("{}: the optimizer state holds {} moments; the model has {} parameters", where, saved.m.size(), n);
  }
  for (AdamW& optimizer : optimizers_) {
    const size_t begin = optimizer.offset(), fp32_at = fp32_moment_at(begin);
    if (saved.states == StatePrecision::k8Bit) {
      const size_t first_block = block_index(all_blocks_, begin);
      for (auto [from, to] : {std::pair{&saved.m8, &optimizer.m8()}, std::pair{&saved.v8, &optimizer.v8()}}) {
        std::copy_n(from->codes.begin() + static_cast<ptrdiff_t>(begin), optimizer.count(),
                    to->codes.begin());
        std::copy_n(from->absmax.begin() + static_cast<ptrdiff_t>(first_block), to->absmax.size(),
                    to->absmax.begin());
      }
    }
    std::copy_n(saved.m.begin() + static_cast<ptrdiff_t>(fp32_at), optimizer.m().size(),
                optimizer.m().begin());
    std::copy_n(saved.v.begin() + static_cast<ptrdiff_t>(fp32_at), optimizer.v().size(),
                optimizer.v().begin());
    optimizer.set_steps(saved.adam_steps);
  }
  const size_t rank = static_cast<size_t>(context_.rank());
  bool has_residuals = false;
  for (const auto& per_rank : saved.residuals) {
    for (const auto& bucket : per_rank) has_residuals |= !bucket.empty();
  }
  if (has_residuals && saved.world != context_.world()) {
    fail_usage(
        "--resume {}: the checkpoint keeps the error-feedback residuals of {} ranks; resume it with mpirun "
        "-np {}",
        where, saved.world, saved.world);
  }
  if (saved.world != context_.world()) return;  // stateless codecs: nothing of theirs to restore
  comm::SyncState sync;
  sync.steps = saved.sync_steps;
  // Without residuals there is nothing to restore, whatever the bucket plan: under data x model
  // parallelism the checkpoint lists rank 0's data group's buckets (codecs that keep residuals are refused
  // there), and another stage's or slice's plan differs — resuming dp2 x pp2 failed on it.
  sync.buckets = has_residuals && rank < saved.residuals.size()
                     ? saved.residuals[rank]
                     : std::vector<std::vector<float>>(buckets_.buckets.size());
  sync_->load_state(sync);
}

}  // namespace triad::parallel
