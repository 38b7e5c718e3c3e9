#include "triad/comm/options.h"

#include "triad/comm/topology.h"

namespace triad::comm {

void CommOptions::to_json(nlohmann::json* out) const {
  nlohmann::json& j = *out;
  j["grad_compression"] = grad_compression;
  j["bucket_mb"] = bucket_mb;
  j["hierarchical"] = hierarchical;
  j["zero"] = zero;
  j["topk_warmup"] = topk_warmup;
  j["int8_chunk"] = int8_chunk;
  j["int8_stochastic"] = int8_stochastic;
  j["comm_timeout"] = comm_timeout;
  j["comm_progress"] = comm_progress;
  j["poll_us"] = poll_us;
  j["topology"] = topology;
  j["ranks_per_node"] = ranks_per_node;
}

void CommOptions::from_json(const nlohmann::json& j) {
  auto take = [&](const char* key, auto* field) {
    if (j.contains(key)) *field = j.at(key).get<std::decay_t<decltype(*field)>>();
  };
  take("grad_compression", &grad_compression);
  take("bucket_mb", &bucket_mb);
  take("hierarchical", &hierarchical);
  take("zero", &zero);
  take("topk_warmup", &topk_warmup);
  take("int8_chunk", &int8_chunk);
  take("int8_stochastic", &int8_stochastic);
  take("comm_timeout", &comm_timeout);
  take("comm_progress", &comm_progress);
  take("poll_us", &poll_us);
  take("topology", &topology);
  take("ranks_per_node", &ranks_per_node);
}

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
