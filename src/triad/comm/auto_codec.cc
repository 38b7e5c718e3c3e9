#include "triad/comm/auto_codec.h"

#include <fmt/format.h>

#include <algorithm>

#include "triad/comm/topology.h"
#include "triad/core/error.h"
#include "triad/core/log.h"

namespace triad::comm {

std::vector<CodecSpec> choose_bucket_codecs(Context& context, const std::vector<GradRange>& buckets,
                                            GradSyncOptions* options_in) {
  GradSyncOptions& options = *options_in;
  std::vector<CodecSpec> specs(buckets.size());
  if (!options.topology) {
    ProbeOptions quick{.bandwidth_bytes = 1 << 20,
                       .bandwidth_messages = 4,
                       .latency_round_trips = 50,
                       .gemm_size = 256,
                       .codec_floats = 1 << 18};
    options.topology = probe_topology(context, quick);
  }
  const Topology* topology = &*options.topology;
  if (topology->world != context.world()) {
    fail_usage("--topology describes {} ranks, but this job has {}", topology->world, context.world());
  }
  // Rank 0 decides and tells the others, so that every rank runs the same codec on each bucket.
  std::vector<int> choice(buckets.size(), 0);
  std::vector<int> group = codec_group(*topology, options.hierarchical);
  std::vector<CodecSpec> candidates = options.codec.candidates;
  candidates.insert(candidates.begin(), CodecSpec{});
  if (context.rank() == 0 && options.zero1) {
    // One codec for every bucket, since the parameter all-gather encodes the whole shard one way: the one
    // with the least predicted time summed over the buckets (the shard exchange and the all-gather move what
    // the flat codec's two phases do), none unless another is faster.
    std::vector<double> total(candidates.size(), 0.0);
    for (size_t c = 0; c < candidates.size(); ++c) {
      for (const GradRange& bucket : buckets) {
        total[c] += predict(*topology, group, bucket, candidates[c], options.codec_options).seconds;
      }
    }
    const int best = static_cast<int>(std::min_element(total.begin(), total.end()) - total.begin());
    std::fill(choice.begin(), choice.end(), best);
    std::vector<std::string> all;
    for (size_t c = 0; c < candidates.size(); ++c) {
      all.push_back(fmt::format("{} {:.2f}", candidates[c].name(), total[c] * 1e3));
    }
    log_info(
        "comm: auto (ZeRO-1: one codec for all {} buckets and the parameter all-gather) -> {} ({} ms "
        "predicted per step)",
        buckets.size(), candidates[best].name(), fmt::join(all, ", "));
  } else if (context.rank() == 0) {
    for (size_t b = 0; b < buckets.size(); ++b) {
      std::vector<Prediction> ranked =
          choose_codec(*topology, group, buckets[b], options.codec, options.codec_options);
      for (size_t c = 0; c < candidates.size(); ++c) {
        if (candidates[c].name() == ranked[0].codec.name()) choice[b] = static_cast<int>(c);
      }
      std::vector<std::string> others;
      for (size_t i = 1; i < ranked.size(); ++i) {
        others.push_back(fmt::format("{} {:.2f}", ranked[i].codec.name(), ranked[i].seconds * 1e3));
      }
      log_info("comm: auto: bucket {} ({:.2f} MiB) -> {}: {:.2f} ms predicted ({} ms)", b,
               buckets[b].count * 4.0 / (1 << 20), ranked[0].codec.name(), ranked[0].seconds * 1e3,
               fmt::join(others, ", "));
    }
    // auto chooses by time; the error-feedback codecs also change how the model converges.
    for (size_t b = 0; b < buckets.size(); ++b) {
      if (candidates[static_cast<size_t>(choice[b])].keeps_error_feedback()) {
        log_warn(
            "comm: auto chose a codec that changes convergence (top-K or PowerSGD; see docs/comm.md, "
            "Convergence per codec); auto:fp16,int8 keeps to the lossless ones");
        break;
      }
    }
  }
  MPI_Request request;
  check_mpi(MPI_Ibcast(choice.data(), static_cast<int>(choice.size()), MPI_INT, 0, context.comm(), &request),
            "auto codec broadcast");
  context.wait(&request, 1, "auto codec broadcast");
  for (size_t b = 0; b < buckets.size(); ++b) specs[b] = candidates[choice[b]];
  return specs;
}

}  // namespace triad::comm
