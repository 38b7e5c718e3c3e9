#include "triad/remat/profile.h"

#include <algorithm>

#include "triad/model/schedule.h"

namespace triad {

namespace {

size_t round_up(size_t bytes) {  // as the arena allocates
  return (bytes + 63) / 64 * 64;
}

// Counts bytes and recompute time while the schedule runs.
class Simulator : public StepEvents {
 public:
  explicit Simulator(const ActivationProfile& p) : p_(p) {}
  void compute(int block, Act kind, bool recompute) override {
    live_ += p_.bytes_of(block, kind);
    peak_ = std::max(peak_, live_);
    // The slice event stands for the head's backward recomputing every vocabulary slice: the logits' time.
    if (recompute) seconds_ += p_.seconds_of(block, kind == Act::kLogitsSlice ? Act::kLogits : kind);
  }
  void release(int block, Act kind) override { live_ -= p_.bytes_of(block, kind); }
  void head_backward() override {}
  void block_backward(int) override {}
  void embed_backward() override {}
  Prediction result() const { return {peak_, seconds_}; }

 private:
  const ActivationProfile& p_;
  size_t live_ = 0, peak_ = 0;
  double seconds_ = 0;
};

}  // namespace

ActivationProfile ActivationProfile::for_shape(const GptConfig& config, int B, int T, int tensor) {
  ActivationProfile p;
  p.layers = config.layers;
  p.bytes.assign(static_cast<size_t>(config.layers) + 1, {});
  p.seconds.assign(static_cast<size_t>(config.layers) + 1, {});
  for (size_t k = 0; k < static_cast<size_t>(Act::kCount); ++k) {
    const Act kind = static_cast<Act>(k);
    const size_t bytes = round_up(unit_elements(config, B, T, kind, tensor) * sizeof(float));
    if (!unit_info(kind).per_block) {
      p.bytes[0][k] = bytes;
      continue;
    }
    for (int l = 0; l < config.layers; ++l) p.bytes[static_cast<size_t>(l) + 1][k] = bytes;
  }
  return p;
}

Prediction simulate(const RematPlan& plan, const ActivationProfile& profile) {
  Simulator sim(profile);
  StepSchedule schedule(plan, profile.layers);
  schedule.forward(sim, true);
  schedule.backward(sim);
  return sim.result();
}

}  // namespace triad
