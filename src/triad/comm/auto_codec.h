#pragma once
// --grad-compression auto: which codec each gradient bucket travels with. Rank 0 asks the cost model
// (comm/topology.h) for the fastest of the candidates on the measured links — from --topology, or from a
// quick probe it runs first — and tells every rank, so that all run the same codec on each bucket. Under
// ZeRO-1 one codec serves every bucket (the parameter all-gather encodes the whole shard one way).

#include <vector>

#include "triad/comm/buckets.h"
#include "triad/comm/codec.h"
#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"

namespace triad::comm {

// Collective. Fills options->topology with the quick probe's when it has none.
std::vector<CodecSpec> choose_bucket_codecs(Context& context, const std::vector<GradRange>& buckets,
                                            GradSyncOptions* options);

}  // namespace triad::comm
