#include "triad/train/dp_sgd.h"

#include <sys/random.h>
#include <xxhash.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/core/parallel.h"
#include "triad/kernels/vector_ops.h"
#include "triad/train/evaluate.h"

namespace triad {

namespace {

constexpr size_t kNoiseBlock = size_t{1} << 16;

// 256 bits from the operating system's CSPRNG: the batches and the noise must be unknowable from anything
// the run publishes.
std::array<uint64_t, 4> secret_rng_state() {
  std::array<uint64_t, 4> state{};
  uint8_t* bytes = reinterpret_cast<uint8_t*>(state.data());
  size_t done = 0;
  while (done < sizeof state) {
    ssize_t n = getrandom(bytes + done, sizeof state - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("getrandom: {}", errno_text());
    done += static_cast<size_t>(n);
  }
  if (state == std::array<uint64_t, 4>{}) state[0] = 1;  // xoshiro's one forbidden state
  return state;
}

Rng rng_from(const std::array<uint64_t, 4>& state) {
  Rng rng;
  rng.set_state(state);
  return rng;
}

}  // namespace

PoissonSampler::PoissonSampler(uint64_t windows, double rate, const std::array<uint64_t, 4>& rng_state)
    : windows_(windows), rate_(rate), rng_(rng_from(rng_state)) {
  if (!(rate > 0 && rate <= 1)) fail("Poisson sampling rate {} is not in (0, 1]", rate);
}

void PoissonSampler::next(std::vector<uint64_t>* out) {
  out->clear();
  if (rate_ >= 1) {
    for (uint64_t i = 0; i < windows_; ++i) out->push_back(i);
    return;
  }
  // The gap before the next included index is geometric: P(gap >= k) = (1 - q)^k, i.e. the number of
  // Bernoulli(q) failures before a success, so the included set is exactly that of N independent coins.
  const double log_keep = std::log1p(-rate_);
  double next = -1;
  while (true) {
    const double u = 1.0 - rng_.uniform();  // (0, 1]
    next += 1 + std::floor(std::log(u) / log_keep);
    if (next >= static_cast<double>(windows_)) break;
    out->push_back(static_cast<uint64_t>(next));
  }
}

void add_gaussian_noise(float* x, size_t n, double stddev, uint64_t key) {
  const size_t blocks = (n + kNoiseBlock - 1) / kNoiseBlock;
  parallel_chunks(blocks, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; ++b) {
      Rng rng(XXH3_64bits_withSeed(&b, sizeof b, key));
      const size_t begin = b * kNoiseBlock, end = std::min(n, begin + kNoiseBlock);
      // Box-Muller, both values of each pair.
      for (size_t i = begin; i < end; i += 2) {
        const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
        const double r = stddev * std::sqrt(-2.0 * std::log(u1)), theta = 6.283185307179586 * u2;
        x[i] += static_cast<float>(r * std::cos(theta));
        if (i + 1 < end) x[i + 1] += static_cast<float>(r * std::sin(theta));
      }
    }
  });
}

DpBatchStats privatized_gradient(Gpt<float>& model, const int32_t* windows, int rows, int T, double clip,
                                 double noise_multiplier, double expected_batch, uint64_t noise_key,
                                 std::vector<float>* sum) {
  const size_t P = model.num_params();
  float* g = model.grads();
  sum->assign(P, 0.0f);
  float* acc = sum->data();
  std::vector<int32_t> inputs(static_cast<size_t>(T)), targets(static_cast<size_t>(T));
  DpBatchStats stats;
  model.zero_grads();
  for (int i = 0; i < rows; ++i) {
    split_windows(windows + static_cast<size_t>(i) * (T + 1), 1, T, inputs.data(), targets.data());
    // A micro-batch of one sequence: the backward leaves exactly this example's gradient in g.
    stats.loss += model.forward(inputs.data(), targets.data(), 1, T);
    model.backward(1.0f / static_cast<float>(T));
    const double norm = global_norm(g, P);
    stats.norms.push_back(norm);
    const float factor = norm > clip ? static_cast<float>(clip / norm) : 1.0f;
    if (norm > clip) ++stats.clipped;
    // Accumulate and clear in one pass, so the next example starts from zero gradients.
    parallel_chunks(
        P,
        [&](size_t j0, size_t j1) {
#pragma omp simd
          for (size_t j = j0; j < j1; ++j) {
            acc[j] += factor * g[j];
            g[j] = 0.0f;
          }
        },
        1 << 15);
  }
  stats.examples = rows;
  if (rows > 0) stats.loss /= rows;
  if (noise_multiplier > 0) add_gaussian_noise(acc, P, noise_multiplier * clip, noise_key);
  const float scale = static_cast<float>(1.0 / expected_batch);
  parallel_chunks(
      P,
      [&](size_t j0, size_t j1) {
#pragma omp simd
        for (size_t j = j0; j < j1; ++j) g[j] = acc[j] * scale;
      },
      1 << 15);
  return stats;
}

DpSecrets DpSecrets::draw() {
  return {secret_rng_state(), secret_rng_state()};
}

DpSgd::DpSgd(const DpSgdConfig& config, const Sampler& sampler, const DpSecrets& secrets)
    : config_(config),
      sampler_(sampler),
      poisson_(sampler.windows_per_epoch(),
               std::min(1.0, static_cast<double>(config.expected_batch) /
                                 static_cast<double>(sampler.windows_per_epoch())),
               secrets.sampling),
      noise_rng_(rng_from(secrets.noise)) {
  const uint64_t N = sampler.windows_per_epoch();
  if (static_cast<uint64_t>(config.expected_batch) > N) {
    fail_usage(
        "--batch {} exceeds the {} training windows: under DP-SGD it is the expected batch q·N, so q "
        "would exceed 1",
        config.expected_batch, N);
  }
  if (config.delta >= 1.0 / static_cast<double>(N)) {
    log_warn(
        "--dp-delta {} is not below 1/N = 1/{} (N = training windows); such a delta allows "
        "revealing whole examples",
        config.delta, N);
  }
}

DpBatchStats DpSgd::step(Gpt<float>& model, int T) {
  poisson_.next(&batch_);  // the same batch on every rank
  const uint64_t noise_key = noise_rng_.next();
  const size_t n = batch_.size(), W = static_cast<size_t>(config_.world),
               r = static_cast<size_t>(config_.rank);
  const size_t first = n * r / W, last = n * (r + 1) / W;  // this rank's examples
  const size_t row = static_cast<size_t>(T) + 1;
  windows_.resize((last - first) * row);
  for (size_t i = first; i < last; ++i) sampler_.copy_window(batch_[i], windows_.data() + (i - first) * row);
  // Dividing by qN / W here makes the ranks' average (Σ clipped + noise) / qN; the noise comes once, from
  // rank 0.
  DpBatchStats stats = privatized_gradient(
      model, windows_.data(), static_cast<int>(last - first), T, config_.clip,
      config_.rank == 0 ? config_.noise_multiplier : 0.0,
      static_cast<double>(config_.expected_batch) / static_cast<double>(W), noise_key, &sum_);
  accountant_.add_steps(poisson_.rate(), config_.noise_multiplier);
  return stats;
}

DpSgd::StepReport DpSgd::report(int examples, int clipped) const {
  return {.epsilon = accountant_.spent(config_.delta).epsilon,
          .delta = config_.delta,
          .batch = examples,
          .clipped_share = examples ? static_cast<double>(clipped) / examples : 0.0};
}

nlohmann::json DpSgd::state() const {
  return {{"sampling_rng", poisson_.state()},
          {"noise_rng", noise_rng_.state()},
          {"accountant", accountant_.to_json()}};
}

void DpSgd::restore(const nlohmann::json& state, const std::string& where) {
  if (!state.is_object())
    fail("{}: the run trains with DP-SGD but the checkpoint holds no DP state (\"dp\")", where);
  try {
    poisson_ = PoissonSampler(poisson_.windows(), poisson_.rate(),
                              state.at("sampling_rng").get<std::array<uint64_t, 4>>());
    noise_rng_.set_state(state.at("noise_rng").get<std::array<uint64_t, 4>>());
    accountant_ = RdpAccountant::from_json(state.at("accountant"));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad DP state: {}", where, e.what());
  }
}

}  // namespace triad
