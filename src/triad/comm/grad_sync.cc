#include "triad/comm/grad_sync.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "triad/comm/auto_codec.h"
#include "triad/comm/pieces.h"
#include "triad/comm/topology.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/log.h"

namespace triad::comm {

namespace {

// In place, rank r's block of `all` (counts[r] elements of `type` at offsets[r]) to every rank, in pieces
// (pieces.h: over TCP, ZeRO-1's step with config B went from 10.1 to 7.7 s).
void gather_in_pieces(Context& context, void* all, const std::vector<int>& counts,
                      const std::vector<int>& offsets, MPI_Datatype type, const char* what) {
  PiecedCollective gather;
  gather.start_allgatherv(all, counts, offsets, type, context.comm(), what);
  context.wait(gather.requests(), gather.size(), what);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// "int8" when every bucket uses int8; "auto(int8x3,topk:0.01x2)" when auto chose several.
std::string codec_summary(const CodecSpec& spec, const std::vector<CodecSpec>& codecs) {
  std::map<std::string, int> counts;
  for (const CodecSpec& codec : codecs) counts[codec.name()]++;
  if (spec.kind != CodecKind::kAuto && counts.size() <= 1)
    return codecs.empty() ? spec.name() : codecs[0].name();
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) parts.push_back(fmt::format("{}x{}", name, count));
  return fmt::format("auto({})", fmt::join(parts, ","));
}

// What ZeRO-1's shard exchange and parameter all-gather can encode with.
bool is_shard_codec(CodecKind kind) {
  return kind == CodecKind::kNone || kind == CodecKind::kFp16 || kind == CodecKind::kInt8;
}

}  // namespace

ShardLayout shard_layout(const std::vector<GradRange>& buckets, int world, const std::vector<size_t>& cuts) {
  ShardLayout layout;
  for (const GradRange& bucket : buckets) {
    std::vector<size_t>& at = layout.parts.emplace_back();
    const size_t part = (bucket.count + world - 1) / world;
    for (int r = 0; r <= world; ++r) {
      size_t boundary = bucket.offset + std::min(bucket.count, r * part);
      if (!cuts.empty()) {  // the nearest cut (ascending cuts keep the boundaries ascending)
        auto above = std::lower_bound(cuts.begin(), cuts.end(), boundary);
        if (above == cuts.end()) {
          boundary = cuts.back();
        } else if (above != cuts.begin() && boundary - *(above - 1) < *above - boundary) {
          boundary = *(above - 1);
        } else {
          boundary = *above;
        }
      }
      at.push_back(std::clamp(boundary, bucket.offset, bucket.end()));
    }
  }
  return layout;
}

std::vector<ShardLayout::Range> ShardLayout::owned(int rank) const {
  std::vector<Range> ranges;
  for (const std::vector<size_t>& at : parts) {
    if (at[rank + 1] > at[rank]) ranges.push_back({at[rank], at[rank + 1] - at[rank]});
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.offset < b.offset; });
  return ranges;
}

size_t ShardLayout::count(int rank) const {
  size_t n = 0;
  for (const std::vector<size_t>& at : parts) n += at[rank + 1] - at[rank];
  return n;
}

// Outside the anonymous namespace: GradSync::State, which holds it, has external linkage.
enum class BucketState { kIdle, kQueued, kActive, kDone };

struct GradSync::State {
  struct Bucket {
    GradRange range;
    std::unique_ptr<Codec> codec;
    BucketState state = BucketState::kIdle;
    Clock::time_point ready_at, done_at;
  };

  State(Context& context, float* grads, size_t count, const GradSyncOptions& options)
      : context(context), grads(grads), count(count), options(options) {}

  void build_codecs();
  void start(Bucket& bucket);
  void poll_active();  // kPoll: advances every active bucket on the calling thread
  void progress_loop();
  void record_stats(Clock::time_point finish_start);

  Context& context;
  float* grads;
  size_t count;
  GradSyncOptions options;
  std::vector<Bucket> buckets;
  std::vector<CodecSpec> codecs;  // per bucket, as it runs
  ShardLayout shards;
  int64_t steps = 0;
  StepStats stats;
  CodecKind zero1_kind = CodecKind::kNone;  // ZeRO-1: what the shards travel as (auto resolved)
  std::vector<float> shard_before;  // ZeRO-1 with fp16/int8: this rank's parameters ahead of the update
  // ZeRO-1 with fp16/int8: every rank's encoded update, all-gathered. Kept across steps: allocated afresh
  // (2 bytes a parameter with fp16, e.g. 34 MB for config B) its pages faulted in every step, which cost
  // 8-14 % of B's step on 2 ranks here (docs/results/2026-12-05-planner-validation.md).
  std::vector<uint8_t> gathered_updates;

  // Shared with the progress thread, under `mutex`.
  std::mutex mutex;
  std::condition_variable wake, all_done;
  std::vector<int> queue;
  int done_count = 0;
  bool stop = false;
  bool finishing = false;  // finish() waits: poll without pausing, nothing else wants the core
  std::exception_ptr error;
  std::thread thread;
};

GradSync::GradSync(Context& context, float* grads, size_t count, std::vector<GradRange> buckets,
                   const GradSyncOptions& options)
    : state_(std::make_unique<State>(context, grads, count, options)) {
  State& s = *state_;
  std::vector<GradRange> sorted = buckets;
  std::sort(sorted.begin(), sorted.end(),
            [](const GradRange& a, const GradRange& b) { return a.offset < b.offset; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].end() > count || (i > 0 && sorted[i].offset < sorted[i - 1].end())) {
      fail("gradient bucket [{}, {}) overlaps another or lies outside the {} gradients", sorted[i].offset,
           sorted[i].end(), count);
    }
  }
  s.shards = shard_layout(buckets, context.world(), options.shard_cuts);
  for (GradRange& range : buckets) {
    s.buckets.emplace_back();
    s.buckets.back().range = std::move(range);
  }
  if (options.zero1) {
    // The shard exchange sums encoded parts in fp32; top-K and PowerSGD keep residuals of whole buckets.
    // auto chooses among none and its fp16/int8 candidates.
    std::vector<CodecSpec>& candidates = s.options.codec.candidates;
    std::erase_if(candidates, [](const CodecSpec& c) { return !is_shard_codec(c.kind); });
    const CodecKind kind = options.codec.kind;
    if (options.hierarchical ||
        !(is_shard_codec(kind) || (kind == CodecKind::kAuto && !candidates.empty()))) {
      fail_usage(
          "--zero 1 works with --grad-compression none, fp16, int8 or auto (choosing among fp16 and int8), "
          "without --hierarchical (got {}{})",
          options.codec.name(), options.hierarchical ? " with --hierarchical" : "");
    }
  }
  if (options.progress == Progress::kThread && context.uses_mpi() && !context.thread_multiple()) {
    log_warn("MPI gives no MPI_THREAD_MULTIPLE: gradients progress inside bucket_ready() and finish()");
    s.options.progress = Progress::kPoll;
  }
  if (context.world() == 1) {
    s.codecs.assign(s.buckets.size(), CodecSpec{});
  } else {
    s.build_codecs();
  }
  s.stats.codec = codec_summary(options.codec, s.codecs);
  if (s.options.progress == Progress::kThread && context.world() > 1) {
    s.thread = std::thread([&s] { s.progress_loop(); });
  }
}

GradSync::~GradSync() {
  State& s = *state_;
  if (s.thread.joinable()) {
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.stop = true;
    }
    s.wake.notify_all();
    s.thread.join();
  }
}

void GradSync::State::build_codecs() {
  std::vector<CodecSpec> specs(buckets.size(), options.codec);
  if (options.codec.kind == CodecKind::kAuto) {
    std::vector<GradRange> ranges;
    for (const Bucket& bucket : buckets) ranges.push_back(bucket.range);
    specs = choose_bucket_codecs(context, ranges, &options);
  }
  bool leader = context.leader_comm() != MPI_COMM_NULL;
  for (size_t b = 0; b < buckets.size(); ++b) {
    // One communicator per bucket: buckets in flight post their phases in different orders on different
    // ranks, and collectives on one communicator must come in the same order everywhere.
    const GradRange& range = buckets[b].range;
    int tag = static_cast<int>(b);
    std::unique_ptr<Codec> codec;
    if (options.zero1) {
      zero1_kind = specs[b].kind;  // the same for every bucket
      codec = make_shard_reduce(specs[b], range, shards.parts[b], context.dup_comm(context.comm()),
                                options.codec_options, tag);
    } else if (options.hierarchical) {
      MPI_Comm node = context.dup_comm(context.node_comm());
      std::unique_ptr<Codec> leader_codec;
      if (leader && context.node_count() > 1) {
        leader_codec =
            make_codec(specs[b], range, context.dup_comm(context.leader_comm()), options.codec_options, tag);
      }
      codec = make_hierarchical(std::move(leader_codec), range, node, context.world(), context.node_count());
    } else {
      codec = make_codec(specs[b], range, context.dup_comm(context.comm()), options.codec_options, tag);
    }
    // With one node, --hierarchical has no inter-node hop for the codec to act on.
    codecs.push_back(options.hierarchical && context.node_count() == 1 ? CodecSpec{} : specs[b]);
    buckets[b].codec = std::move(codec);
  }
}

void GradSync::State::start(Bucket& bucket) {
  bucket.codec->start(grads + bucket.range.offset, steps);
  bucket.state = BucketState::kActive;
}

void GradSync::State::poll_active() {
  for (Bucket& bucket : buckets) {
    if (bucket.state == BucketState::kActive && bucket.codec->poll()) {
      bucket.state = BucketState::kDone;
      bucket.done_at = Clock::now();
      done_count++;
    }
  }
}

void GradSync::State::progress_loop() {
  std::vector<int> active, starting, finished;
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    wake.wait(lock, [&] { return stop || !queue.empty() || !active.empty(); });
    if (stop) return;
    starting.swap(queue);
    lock.unlock();
    bool moved = !starting.empty();
    try {
      for (int b : starting) {
        buckets[b].codec->start(grads + buckets[b].range.offset, steps);
        active.push_back(b);
      }
      for (auto it = active.begin(); it != active.end();) {
        if (buckets[*it].codec->poll()) {
          buckets[*it].done_at = Clock::now();
          finished.push_back(*it);
          it = active.erase(it);
        } else {
          ++it;
        }
      }
      context.serve_pings();
    } catch (...) {
      lock.lock();
      error = std::current_exception();
      all_done.notify_all();
      return;
    }
    moved |= !finished.empty();
    lock.lock();
    starting.clear();
    for (int b : finished) buckets[b].state = BucketState::kDone;
    done_count += static_cast<int>(finished.size());
    if (!finished.empty()) all_done.notify_all();
    finished.clear();
    // While the backward computes, leave it the core between polls; finish() or a new bucket ends the pause.
    if (!moved && !active.empty() && !finishing && options.poll_us > 0) {
      wake.wait_for(lock, std::chrono::microseconds(options.poll_us),
                    [&] { return stop || finishing || !queue.empty(); });
    }
  }
}

void GradSync::bucket_ready(int bucket) {
  State& s = *state_;
  if (bucket < 0 || bucket >= static_cast<int>(s.buckets.size())) {
    fail("bucket_ready({}): there are {} buckets", bucket, s.buckets.size());
  }
  State::Bucket& b = s.buckets[bucket];
  std::unique_lock<std::mutex> lock(s.mutex);
  if (b.state != BucketState::kIdle) fail("bucket_ready({}) called twice in step {}", bucket, s.steps);
  b.ready_at = Clock::now();
  if (s.context.world() == 1) {
    b.state = BucketState::kDone;
    b.done_at = b.ready_at;
    s.done_count++;
  } else if (s.options.progress == Progress::kPoll) {
    lock.unlock();
    s.start(b);
    s.poll_active();
  } else {
    b.state = BucketState::kQueued;
    s.queue.push_back(bucket);
    lock.unlock();
    s.wake.notify_one();
  }
}

void GradSync::finish() {
  State& s = *state_;
  Clock::time_point finish_start = Clock::now();
  std::vector<int> idle;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (size_t b = 0; b < s.buckets.size(); ++b) {
      if (s.buckets[b].state == BucketState::kIdle) idle.push_back(static_cast<int>(b));
    }
  }
  for (int b : idle) bucket_ready(b);
  int total = static_cast<int>(s.buckets.size());
  auto what = [&] {
    return fmt::format("gradient sync of step {} ({} of {} buckets done)", s.steps, s.done_count, total);
  };
  Context::WaitScope scope(s.context);
  Clock::time_point deadline_start = finish_start;  // moved on when on_timeout() finds a busy peer
  auto timed_out = [&] { return ms_between(deadline_start, Clock::now()) / 1e3 > s.context.timeout_s(); };
  auto waited = [&] { return ms_between(finish_start, Clock::now()) / 1e3; };
  if (s.context.world() > 1 && s.options.progress == Progress::kPoll) {
    for (int spins = 0; s.done_count < total; ++spins) {
      s.poll_active();
      s.context.serve_pings();
      if (timed_out()) {
        s.context.on_timeout(what(), waited(), [&] {
          s.poll_active();
          return s.done_count == total;
        });
        deadline_start = Clock::now();
      }
      s.context.pause_in_wait(spins, finish_start);
    }
  } else if (s.context.world() > 1) {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.finishing = true;
    s.wake.notify_one();
    while (s.done_count < total && !s.error) {
      s.all_done.wait_for(lock, std::chrono::milliseconds(10));
      if (timed_out() && s.done_count < total && !s.error) {
        std::string message = what();
        s.finishing = false;
        lock.unlock();
        // Returns when the peers we wait for are busy, or when the progress thread completes the sync.
        s.context.on_timeout(message, waited(), [&] {
          std::lock_guard<std::mutex> done_lock(s.mutex);
          return s.done_count == total || s.error != nullptr;
        });
        lock.lock();
        s.finishing = true;
        s.wake.notify_one();
        deadline_start = Clock::now();
      }
    }
    s.finishing = false;
    if (s.error) std::rethrow_exception(s.error);
  }
  s.record_stats(finish_start);
  for (State::Bucket& b : s.buckets) b.state = BucketState::kIdle;
  s.done_count = 0;
  s.steps++;
}

void GradSync::State::record_stats(Clock::time_point finish_start) {
  Clock::time_point finish_end = Clock::now();
  stats.bytes_sent = 0;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> spans;
  for (const Bucket& b : buckets) {
    if (b.codec) {
      for (const Transfer& t : b.codec->transfers(steps)) stats.bytes_sent += bytes_sent(t);
    }
    spans.emplace_back(b.ready_at, b.done_at);
  }
  // The union of the in-flight intervals.
  std::sort(spans.begin(), spans.end());
  stats.comm_ms = 0;
  for (size_t i = 0; i < spans.size();) {
    Clock::time_point begin = spans[i].first, end = spans[i].second;
    for (++i; i < spans.size() && spans[i].first <= end; ++i) end = std::max(end, spans[i].second);
    stats.comm_ms += ms_between(begin, end);
  }
  stats.wait_ms = context.world() > 1 ? ms_between(finish_start, finish_end) : 0;
  stats.comm_hidden_fraction =
      stats.comm_ms > 0 ? std::clamp(1 - stats.wait_ms / stats.comm_ms, 0.0, 1.0) : 1;
}

const StepStats& GradSync::stats() const {
  return state_->stats;
}

const std::vector<CodecSpec>& GradSync::bucket_codecs() const {
  return state_->codecs;
}

const ShardLayout& GradSync::shards() const {
  return state_->shards;
}

SyncState GradSync::save_state() const {
  SyncState saved;
  saved.steps = state_->steps;
  for (const State::Bucket& b : state_->buckets) {
    saved.buckets.push_back(b.codec ? b.codec->save_state() : std::vector<float>{});
  }
  return saved;
}

void GradSync::load_state(const SyncState& saved) {
  State& s = *state_;
  if (saved.buckets.size() != s.buckets.size()) {
    fail("gradient sync state has {} buckets; this run has {} (same --bucket-mb and model needed)",
         saved.buckets.size(), s.buckets.size());
  }
  for (size_t b = 0; b < s.buckets.size(); ++b) {
    if (s.buckets[b].codec) {
      s.buckets[b].codec->load_state(saved.buckets[b]);
    } else if (!saved.buckets[b].empty()) {
      fail("gradient sync state of bucket {} has {} floats, but a single process keeps none", b,
           saved.buckets[b].size());
    }
  }
  s.steps = saved.steps;
}

void GradSync::before_update(const float* params) {
  State& s = *state_;
  if (!s.options.zero1 || s.zero1_kind == CodecKind::kNone) return;
  const int me = s.context.rank();
  s.shard_before.clear();  // this rank's parts one after the other, in bucket order (gather_params())
  s.shard_before.reserve(s.shards.count(me));  // grown part by part it would peak at up to twice the size
  for (const std::vector<size_t>& at : s.shards.parts)
    s.shard_before.insert(s.shard_before.end(), params + at[me], params + at[me + 1]);
}

uint64_t GradSync::gather_params(float* params) {
  State& s = *state_;
  if (!s.options.zero1 || s.zero1_kind == CodecKind::kNone) {
    return all_gather_shards(s.context, params, s.shards);
  }
  const int world = s.context.world(), me = s.context.rank();
  if (s.shard_before.size() != s.shards.count(me)) fail("zero-1: gather_params() without before_update()");
  // One all-gather: rank r's block is its parts' updates, each encoded on its own (its bucket the tag of
  // the rounding noise), one after the other in bucket order.
  const auto encoding = [&](size_t bucket) {
    return Encoding{s.zero1_kind, s.options.codec_options, static_cast<int>(bucket), me};
  };
  std::vector<int> counts(world), offsets(world);
  size_t total = 0;
  for (int r = 0; r < world; ++r) {
    size_t bytes = 0;
    for (size_t b = 0; b < s.shards.parts.size(); ++b)
      bytes += encoding(b).bytes(s.shards.parts[b][r + 1] - s.shards.parts[b][r]);
    if (total + bytes > static_cast<size_t>(INT_MAX)) {
      fail("zero-1 all-gather: {} encoded parameters exceed one MPI message", s.count);
    }
    counts[r] = static_cast<int>(bytes);
    offsets[r] = static_cast<int>(total);
    total += bytes;
  }
  std::vector<uint8_t>& received = s.gathered_updates;
  received.resize(total);
  uint8_t* out = received.data() + offsets[me];
  const float* before = s.shard_before.data();
  for (size_t b = 0; b < s.shards.parts.size(); ++b) {
    float* mine = params + s.shards.parts[b][me];
    const size_t n = s.shards.parts[b][me + 1] - s.shards.parts[b][me];
    for (size_t i = 0; i < n; ++i) mine[i] -= before[i];  // the update
    encoding(b).encode(mine, n, out, s.steps, 3, me);
    std::copy(before, before + n, mine);
    out += encoding(b).bytes(n);
    before += n;
  }
  gather_in_pieces(s.context, received.data(), counts, offsets, MPI_BYTE,
                   "zero-1 parameter update all-gather");
  for (int r = 0; r < world; ++r) {
    const uint8_t* in = received.data() + offsets[r];
    for (size_t b = 0; b < s.shards.parts.size(); ++b) {
      const size_t n = s.shards.parts[b][r + 1] - s.shards.parts[b][r];
      encoding(b).decode(in, n, params + s.shards.parts[b][r], true);
      in += encoding(b).bytes(n);
    }
  }
  s.shard_before.clear();
  return bytes_sent({Collective::kAllgather, static_cast<uint64_t>(counts[me]), world});
}

uint64_t all_gather_shards(Context& context, float* params, const ShardLayout& layout) {
  const int world = context.world();
  if (world == 1) return 0;
  // One in-place all-gather per bucket (a bucket's parts are adjacent, in rank order), all in flight.
  std::vector<PiecedCollective> buckets(layout.parts.size());
  for (size_t b = 0; b < layout.parts.size(); ++b) {
    const std::vector<size_t>& at = layout.parts[b];
    if (at[world] - at[0] > static_cast<size_t>(INT_MAX)) {
      fail("zero-1 all-gather: a bucket of {} parameters exceeds one MPI message", at[world] - at[0]);
    }
    std::vector<int> counts(world), offsets(world);
    for (int r = 0; r < world; ++r) {
      counts[r] = static_cast<int>(at[r + 1] - at[r]);
      offsets[r] = static_cast<int>(at[r] - at[0]);
    }
    buckets[b].start_allgatherv(params + at[0], counts, offsets, MPI_FLOAT, context.comm(),
                                "zero-1 parameter all-gather");
  }
  for (PiecedCollective& bucket : buckets)
    context.wait(bucket.requests(), bucket.size(), "zero-1 parameter all-gather");
  return bytes_sent({Collective::kAllgather, layout.count(context.rank()) * sizeof(float), world});
}

}  // namespace triad::comm
