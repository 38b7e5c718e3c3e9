#include "triad/comm/options.h"

#include "triad/comm/topology.h"

namespace triad::comm {

bool CommOptions::may_change_on_resume(const std::string& key) {
  return key == "comm_timeout" || key == "comm_progress" || key == "poll_us" || key == "topology" ||
         key == "ranks_per_node";
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
