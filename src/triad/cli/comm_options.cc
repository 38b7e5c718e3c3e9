#include "triad/cli/comm_options.h"

#include "triad/cli/cli.h"

namespace triad::cli {

void add_context_options(CLI::App& command, comm::CommOptions& flags) {
  command
      .add_option("--comm-timeout", flags.comm_timeout,
                  "Seconds any wait on other ranks may last before the job fails with a message naming the "
                  "ranks that stopped answering (a rank that answers it is busy, e.g. writing a checkpoint, "
                  "is waited for with a warning each period)")
      ->check(positive());
  command
      .add_option("--ranks-per-node", flags.ranks_per_node,
                  "Treat every N consecutive ranks as one node (0: ranks sharing memory form a node); lets "
                  "--hierarchical be tried on one machine")
      ->check(non_negative());
}

void add_comm_options(CLI::App& command, comm::CommOptions& flags, const std::string& group) {
  const size_t before = command.get_options().size();
  command
      .add_option(
          "--grad-compression", flags.grad_compression,
          "Gradient codec: none | fp16 | int8 | topk:RATIO (error feedback) | powersgd:RANK (error "
          "feedback) | auto[:LIST] (per bucket, the codec the cost model predicts fastest; LIST defaults "
          "to fp16,int8,topk:0.01,powersgd:4). fp16 and int8 cost no accuracy in our runs; topk:0.01 and "
          "powersgd:4 ended the default run 0.5 % and 3.6 % above none's val loss (auto:fp16,int8 keeps "
          "to the first two). See docs/comm.md")
      ->type_name("CODEC");
  command
      .add_option(
          "--bucket-mb", flags.bucket_mb,
          "Gradients are averaged in buckets of whole blocks of at least this many MiB, each started as "
          "soon as the backward finishes it (0: one bucket per block)")
      ->check(non_negative());
  command.add_flag("--hierarchical", flags.hierarchical,
                   "Reduce inside each node, average among node leaders (the codec applies there only), "
                   "broadcast back");
  command
      .add_option("--comm-progress", flags.comm_progress,
                  "Who drives communication during the backward: thread (a progress thread polls MPI every "
                  "--poll-us) or poll (only calls into GradSync do)")
      ->check(CLI::IsMember({"thread", "poll"}));
  command
      .add_option("--poll-us", flags.poll_us,
                  "Progress thread: microseconds it sleeps between MPI polls while nothing moves")
      ->check(non_negative());
  command
      .add_option(
          "--topk-warmup", flags.topk_warmup,
          "top-K: steps over which the share of entries sent falls from 25 % to RATIO (DGC warm-up; "
          "0: RATIO from the start). Default: a twelfth of --steps, 50 of the default 600, which took "
          "1-2 points off top-K's val loss at each of three seeds, for 1.5x its bytes (docs/comm.md)")
      ->check(non_negative())
      ->default_str("steps/12");
  command.add_option("--int8-chunk", flags.int8_chunk, "int8: values that share one scale")
      ->check(positive());
  command.add_flag("--int8-stochastic", flags.int8_stochastic,
                   "int8: round stochastically (unbiased, seeded by --seed) instead of to nearest");
  command
      .add_option("--topology", flags.topology,
                  "auto: topology JSON from 'triad probe' (without it a quick probe runs at start-up)")
      ->type_name("FILE");
  add_context_options(command, flags);
  if (group.empty()) return;
  std::vector<CLI::Option*> options = command.get_options();
  for (size_t i = before; i < options.size(); ++i) options[i]->group(group);
}

}  // namespace triad::cli
