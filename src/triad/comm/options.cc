#include "triad/comm/options.h"

#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/topology.h"

namespace triad::comm {

namespace {

void add_context_options(OptionTable<CommOptions>& t) {
  t.add("comm-timeout", &CommOptions::comm_timeout,
        "Seconds any wait on other ranks may last before the job fails with a message naming the ranks that "
        "stopped answering (a rank that answers it is busy, e.g. writing a checkpoint, is waited for with a "
        "warning each period)")
      .check(Check::kPositive)
      .per_command();
  t.add("ranks-per-node", &CommOptions::ranks_per_node,
        "Treat every N consecutive ranks as one node (0: ranks sharing memory form a node); lets "
        "--hierarchical be tried on one machine")
      .check(Check::kNonNegative)
      .per_command();
}

}  // namespace

OptionTable<CommOptions> CommOptions::context_options() {
  OptionTable<CommOptions> t;
  add_context_options(t);
  return t;
}

const OptionTable<CommOptions>& CommOptions::options() {
  static const OptionTable<CommOptions> table = [] {
    OptionTable<CommOptions> t;
    t.add("grad-compression", &CommOptions::grad_compression,
          "Gradient codec: none | fp16 | int8 | topk:RATIO (error feedback) | powersgd:RANK (error "
          "feedback) | auto[:LIST] (per bucket, the codec the cost model predicts fastest; LIST defaults to "
          "fp16,int8,topk:0.01,powersgd:4). fp16 and int8 cost no accuracy in our runs; topk:0.01 and "
          "powersgd:4 ended the default run 0.5 % and 3.6 % above none's val loss (auto:fp16,int8 keeps to "
          "the first two). See docs/comm.md")
        .value_name("CODEC");
    t.add("bucket-mb", &CommOptions::bucket_mb,
          "Gradients are averaged in buckets of whole blocks of at least this many MiB, each started as soon "
          "as the backward finishes it (0: one bucket per block)")
        .check(Check::kNonNegative);
    t.add(
        "hierarchical", &CommOptions::hierarchical,
        "Reduce inside each node, average among node leaders (the codec applies there only), broadcast back");
    t.add("zero", &CommOptions::zero,
          "1: shard AdamW's state over the data-parallel ranks (ZeRO stage 1): reduce-scatter of gradients, "
          "each rank updates its shard, all-gather of the parameters (fp32; with --grad-compression fp16 or "
          "int8 both travel so encoded, the parameters as their update; auto picks one of none, fp16 and "
          "int8)")
        .one_of({"0", "1"});
    t.add(
         "comm-progress", &CommOptions::comm_progress,
         "Who drives communication during the backward: thread (a progress thread polls MPI every --poll-us) "
         "or poll (only calls into GradSync do)")
        .one_of({"thread", "poll"})
        .per_command();
    t.add("poll-us", &CommOptions::poll_us,
          "Progress thread: microseconds it sleeps between MPI polls while nothing moves")
        .check(Check::kNonNegative)
        .per_command();
    t.add("topk-warmup", &CommOptions::topk_warmup,
          "top-K: steps over which the share of entries sent falls from 25 % to RATIO (DGC warm-up; 0: RATIO "
          "from the start). Default: a twelfth of --steps, 50 of the default 600, which took 1-2 points off "
          "top-K's val loss at each of three seeds, for 1.5x its bytes (docs/comm.md)")
        .check(Check::kNonNegative)
        .shown_default("steps/12");
    t.add("int8-chunk", &CommOptions::int8_chunk, "int8: values that share one scale")
        .check(Check::kPositive);
    t.add("int8-stochastic", &CommOptions::int8_stochastic,
          "int8: round stochastically (unbiased, seeded by --seed) instead of to nearest");
    t.add("topology", &CommOptions::topology,
          "auto: topology JSON from 'triad probe' (without it a quick probe runs at start-up)")
        .value_name("FILE")
        .per_command();
    add_context_options(t);
    return t;
  }();
  return table;
}

ContextOptions context_options(const CommOptions& o) {
  return ContextOptions{.timeout_s = o.comm_timeout, .ranks_per_node = o.ranks_per_node};
}

GradSyncOptions grad_sync_options(const CommOptions& o, uint64_t seed) {
  GradSyncOptions options;
  options.codec = parse_codec_spec(o.grad_compression);
  options.codec_options = CodecOptions{.int8_chunk = o.int8_chunk,
                                       .int8_stochastic = o.int8_stochastic,
                                       .topk_warmup_steps = o.topk_warmup,
                                       .seed = seed};
  options.hierarchical = o.hierarchical;
  options.zero1 = o.zero == 1;
  options.progress = o.comm_progress == "poll" ? Progress::kPoll : Progress::kThread;
  options.poll_us = o.poll_us;
  if (!o.topology.empty()) options.topology = load_topology(o.topology);
  return options;
}

}  // namespace triad::comm
