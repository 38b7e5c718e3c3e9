#pragma once
// DP-SGD (Abadi et al. 2016) for the trainer: `--dp-noise SIGMA --dp-clip C --dp-delta DELTA`.
//
// One step:
//   1. Poisson sampling: each of the N training windows (the sampler's non-overlapping windows of T + 1
//      tokens, in storage order) joins the batch independently with probability q = batch / N. The batch
//      size therefore varies from step to step (mean qN = --batch, and it can be 0); this is the sampling
//      the RDP accountant assumes, and the reason batches are not fixed-size here.
//   2. Per-example gradients, exactly: each sampled window is run through the model's forward and backward
//      as a micro-batch of one sequence, so the gradient buffer holds that example's gradient g_i of its
//      mean token loss. Its L2 norm over all parameters decides the clip factor min(1, C / |g_i|), and the
//      clipped gradient is added into a separate sum.
//   3. Noise and normalisation: N(0, σ²C²) is added to every coordinate of the sum, which is then divided
//      by the *expected* batch size qN (not the sampled one: dividing by a data-dependent count would
//      leak it; this is Opacus's convention). The result goes to AdamW as the step's gradient; the global
//      --clip is not applied on top.
//   4. Accounting: the RdpAccountant adds one step of the sampled Gaussian mechanism (q, σ).
//
// Under mpirun (W ranks) every rank holds the same secret generator states (rank 0 draws them and sends
// them to the others), so all draw the same Poisson batch and rank r takes its examples [r·n/W, (r+1)·n/W).
// Each divides its clipped sum by qN/W, rank 0 alone adds the noise (as Opacus does), and the gradient
// average over the ranks is then exactly step 3's (Σ clipped + noise) / qN. The ranks and the links between
// them are inside the trust boundary, like the training data: the guarantee covers the weights and what is
// computed from them (governance.md: not the loss metrics).
//
// The privacy unit is one training window, not a document: a document spread over k windows is protected
// with group privacy (roughly k·ε). The batch sampling and the noise draw from generators seeded with 256
// secret bits from the operating system, never from --seed, which is public in run.json and the audit log:
// knowing the seed would reveal the batches and the noise, and void the guarantee. Their states are saved
// in checkpoints (so resume is exact), which must be kept as private as the training data.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "triad/core/rng.h"
#include "triad/data/sampler.h"
#include "triad/governance/rdp.h"
#include "triad/model/gpt.h"

namespace triad {

// Poisson sampling of window indices: every index in [0, windows) is included independently with
// probability `rate`. Draws geometric gaps between included indices, so a step costs O(batch), not
// O(windows).
class PoissonSampler {
 public:
  PoissonSampler(uint64_t windows, double rate, const std::array<uint64_t, 4>& rng_state);
  // The next batch, as ascending window indices.
  void next(std::vector<uint64_t>* out);

  uint64_t windows() const { return windows_; }
  double rate() const { return rate_; }
  const std::array<uint64_t, 4>& state() const { return rng_.state(); }

 private:
  uint64_t windows_;
  double rate_;
  Rng rng_;
};

// Adds N(0, stddev²) to each of x[0, n), drawn from generators keyed by `key` and the position's 64Ki block,
// so the result does not depend on the thread count.
void add_gaussian_noise(float* x, size_t n, double stddev, uint64_t key);

struct DpBatchStats {
  int examples = 0;
  int clipped = 0;            // examples whose gradient norm exceeded C
  double loss = 0;            // mean over the examples of their mean token loss (0 without examples)
  std::vector<double> norms;  // each example's gradient norm before clipping
};

// The privatised gradient of `rows` windows (rows x (T + 1) tokens), left in model.grads():
//   (Σ_i min(1, C / |g_i|) g_i + N(0, σ²C² I)) / expected_batch
// where g_i is the exact gradient of window i's mean token loss. `sum` is scratch of num_params floats.
// Noise is drawn only when noise_multiplier > 0 (σ = 0 is for tests).
DpBatchStats privatized_gradient(Gpt<float>& model, const int32_t* windows, int rows, int T, double clip,
                                 double noise_multiplier, double expected_batch, uint64_t noise_key,
                                 std::vector<float>* sum);

struct DpSgdConfig {
  double noise_multiplier = 0;  // σ
  double clip = 0;              // C
  double delta = 0;             // δ for the reported ε
  int expected_batch = 0;       // qN: --batch
  int rank = 0, world = 1;      // this process's share of each batch (data parallel)
};

// The generators' secret starting states: 256 bits each from the operating system's CSPRNG. Under mpirun
// rank 0's are sent to every rank.
struct DpSecrets {
  std::array<uint64_t, 4> sampling{}, noise{};
  static DpSecrets draw();
};

// The mechanism of one run: sampling, gradients, noise and the privacy ledger, with state for checkpoints.
class DpSgd {
 public:
  // Fails when the batch exceeds the number of windows.
  DpSgd(const DpSgdConfig& config, const Sampler& sampler, const DpSecrets& secrets);

  // One step: samples, computes this rank's part of the privatised gradient into model.grads() (the whole
  // of it in one process; under mpirun the ranks' average is), records the step in the ledger. The stats
  // are this rank's examples'.
  DpBatchStats step(Gpt<float>& model, int T);
  // What a step reports, from the stats of all its examples (summed over ranks).
  struct StepReport {
    double epsilon = 0;  // spent so far, at delta
    double delta = 0;
    int batch = 0;             // examples in the step's Poisson batch
    double clipped_share = 0;  // of them, the share whose gradient was clipped
  };
  StepReport report(int examples, int clipped) const;

  double sample_rate() const { return poisson_.rate(); }
  const RdpAccountant& accountant() const { return accountant_; }
  const DpSgdConfig& config() const { return config_; }

  // {"sampling_rng": [4 words], "noise_rng": [4 words], "accountant": {...}}: saved in each checkpoint.
  nlohmann::json state() const;
  void restore(const nlohmann::json& state, const std::string& where);

 private:
  DpSgdConfig config_;
  const Sampler& sampler_;
  PoissonSampler poisson_;
  Rng noise_rng_;
  RdpAccountant accountant_;
  std::vector<uint64_t> batch_;
  std::vector<int32_t> windows_;
  std::vector<float> sum_;
};

}  // namespace triad
