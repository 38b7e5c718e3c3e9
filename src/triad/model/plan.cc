#include "triad/model/plan.h"

namespace triad {

bool RematPlan::keeps(int block, Act kind) const {
  if (block < 0) return kind != Act::kLogits || keep_logits;
  if (kind == Act::kBlockOut && block == layers() - 1) return true;
  return (keep[static_cast<size_t>(block)] & unit_bit(kind)) != 0;
}

void RematPlan::normalize() {
  if (!keep.empty()) keep.back() |= unit_bit(Act::kBlockOut);
}

int RematPlan::dropped_units() const {
  int n = keep_logits ? 0 : 1;
  for (int l = 0; l < layers(); ++l) {
    for (Act kind : block_units()) n += !keeps(l, kind);
  }
  return n;
}

nlohmann::json RematPlan::to_json() const {
  nlohmann::json blocks = nlohmann::json::array();
  for (int l = 0; l < layers(); ++l) {
    nlohmann::json dropped = nlohmann::json::array();
    for (Act kind : block_units()) {
      if (!keeps(l, kind)) dropped.push_back(act_name(kind));
    }
    blocks.push_back(dropped);
  }
  return blocks;  // per block, the names of the dropped (recomputed) units
}

}  // namespace triad
