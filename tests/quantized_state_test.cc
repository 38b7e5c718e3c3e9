// 8-bit optimizer state (model/quantized_state.h): the dynamic maps, the round-trip error bound of block-wise
// quantization, and AdamW with 8-bit moments against a scalar AdamW written out here.

#include "triad/model/quantized_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "triad/comm/grad_sync.h"
#include "triad/model/optimizer.h"
#include "triad/train/memory_check.h"

namespace triad {
namespace {

TEST(DynamicMap, SignedCoversMinusOneToOneWithAnExactZero) {
  const CodeMap& codes = dynamic_map(QuantMap::kSigned);
  EXPECT_TRUE(std::is_sorted(codes.begin(), codes.end()));
  EXPECT_EQ(std::adjacent_find(codes.begin(), codes.end()), codes.end()) << "256 distinct codes";
  EXPECT_EQ(codes.back(), 1.0f);
  EXPECT_GE(codes.front(), -1.0f);
  EXPECT_LT(codes.front(), -0.99f);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), 0.0f), 1);
  EXPECT_EQ(std::count_if(codes.begin(), codes.end(), [](float c) { return c < 0; }), 127);
  // The smallest magnitudes: 10^-6 x the midpoint of [0.1, 1] (one fraction at the lowest exponent).
  EXPECT_FLOAT_EQ(codes[128], 0.55e-6f);
  EXPECT_FLOAT_EQ(codes[126], -0.55e-6f);
  // The top exponent has 64 fractions: the largest negative code is -(1 - 0.9 / 128).
  EXPECT_FLOAT_EQ(codes.front(), -(1.0f - 0.9f / 128));
}

TEST(DynamicMap, UnsignedCoversZeroToOneWithTwiceTheFractions) {
  const CodeMap& codes = dynamic_map(QuantMap::kUnsigned);
  EXPECT_TRUE(std::is_sorted(codes.begin(), codes.end()));
  EXPECT_EQ(std::adjacent_find(codes.begin(), codes.end()), codes.end());
  EXPECT_EQ(codes.front(), 0.0f);
  EXPECT_EQ(codes.back(), 1.0f);
  EXPECT_FLOAT_EQ(codes[1], 0.325e-6f);            // midpoint of [0.1, 0.55] x 10^-6
  EXPECT_FLOAT_EQ(codes[254], 1.0f - 0.9f / 256);  // 128 fractions at the top exponent
}

TEST(DynamicMap, NearestCodeIsTheNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.1f, 1.1f);
  for (QuantMap map : {QuantMap::kSigned, QuantMap::kUnsigned}) {
    const CodeMap& codes = dynamic_map(map);
    for (int i = 0; i < 20000; ++i) {
      float x = uniform(rng);
      if (i % 3 == 0) x *= std::pow(10.0f, -static_cast<float>(i % 8));  // down to 1e-7
      const uint8_t q = nearest_code(codes, x);
      for (float c : codes) ASSERT_LE(std::fabs(x - codes[q]), std::fabs(x - c)) << x;
    }
  }
}

// quantize_block's table gives the binary search's code for every x in [-1, 1]: the codes themselves, the
// midpoints between neighbours and the floats on either side of them (the ties and near-ties), zeros, and
// random values over all exponents.
TEST(DynamicMap, IndexedLookupIsTheSearch) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f), exponent(-40.0f, 0.0f);
  for (QuantMap map : {QuantMap::kSigned, QuantMap::kUnsigned}) {
    const CodeMap& codes = dynamic_map(map);
    std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 1e-30f, -1e-30f};
    for (size_t i = 0; i < codes.size(); ++i) {
      xs.push_back(codes[i]);
      if (i + 1 == codes.size()) continue;
      const float mid = (codes[i] + codes[i + 1]) / 2;
      for (float x = std::nextafter(mid, -2.0f), k = 0; k < 3; ++k, x = std::nextafter(x, 2.0f))
        xs.push_back(x);
    }
    for (int i = 0; i < 200000; ++i) xs.push_back(uniform(rng) * std::pow(2.0f, exponent(rng)));
    for (float x : xs) ASSERT_EQ(nearest_code_indexed(map, x), nearest_code(codes, x)) << x;
  }
}

// The largest error of quantizing x of a block with scale `absmax`: half the gap between the two codes that
// bracket x / absmax, or beyond the codes, the distance to the end code; and a few float roundings.
double error_bound(const CodeMap& codes, double x, double absmax) {
  if (absmax == 0) return 0;
  const double r = x / absmax;
  double bound = 0;
  if (r <= codes.front()) {
    bound = codes.front() - r;
  } else if (r >= codes.back()) {
    bound = r - codes.back();
  } else {
    const size_t i = static_cast<size_t>(std::upper_bound(codes.begin(), codes.end(), r) - codes.begin());
    bound = (codes[i] - codes[i - 1]) / 2;
  }
  return (bound + 1e-6) * absmax;
}

TEST(BlockQuantization, RoundTripErrorWithinHalfACodeGap) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> exponent(-30, 30);
  for (QuantMap map : {QuantMap::kSigned, QuantMap::kUnsigned}) {
    const CodeMap& codes = dynamic_map(map);
    for (size_t n : {size_t{1}, size_t{7}, size_t{1000}, kQuantBlock}) {
      for (int trial = 0; trial < 6; ++trial) {
        std::vector<float> x(n);
        for (size_t i = 0; i < n; ++i) {
          float value = normal(rng);
          switch ((i + trial) % 5) {
            case 0:
              value = 0;
              break;  // zeros
            case 1:
              value *= 1e-30f;
              break;  // tiny
            case 2:
              value *= std::pow(10.0f, exponent(rng));
              break;  // any scale
            case 3:
              if (trial == 5) value *= 1e30f;
              break;  // huge
            default:
              break;
          }
          x[i] = map == QuantMap::kUnsigned ? std::fabs(value) : value;
        }
        if (trial == 0) std::fill(x.begin(), x.end(), 0.0f);  // a block of zeros
        std::vector<uint8_t> q(n);
        const float absmax = quantize_block(x.data(), n, map, q.data());
        double largest = 0;
        for (float v : x) largest = std::max(largest, std::fabs(static_cast<double>(v)));
        ASSERT_EQ(absmax, largest);
        std::vector<float> back(n);
        dequantize_block(q.data(), n, absmax, map, back.data());
        for (size_t i = 0; i < n; ++i) {
          ASSERT_LE(std::fabs(static_cast<double>(back[i]) - x[i]), error_bound(codes, x[i], absmax))
              << "n " << n << " trial " << trial << " x " << x[i] << " absmax " << absmax;
        }
      }
    }
  }
}

GptConfig small_config() {
  GptConfig config;
  config.vocab = 300;  // wte: 4800 values, three blocks, the last one partial
  config.layers = 1;
  config.d_model = 16;  // every tensor but wte under 4096 values
  config.heads = 2;
  config.seq_len = 8;
  return config;
}

TEST(BlockQuantization, BlocksFollowTensors) {
  const ParameterLayout layout(small_config());
  const std::vector<size_t> cuts = quantization_boundaries(layout, 0, layout.count());
  for (const TensorSpec& t : layout.tensors()) {
    EXPECT_TRUE(std::binary_search(cuts.begin(), cuts.end(), t.offset)) << t.name;
    for (size_t at = t.offset; at < t.offset + t.count; at += kQuantBlock)
      EXPECT_TRUE(std::binary_search(cuts.begin(), cuts.end(), at)) << t.name;
  }
  for (size_t i = 1; i < cuts.size(); ++i) EXPECT_LE(cuts[i] - cuts[i - 1], kQuantBlock);
  // ZeRO-1's parts end at cuts, the one nearest to an even split of their bucket (here one bucket of all).
  const comm::ShardLayout shards = comm::shard_layout({comm::GradRange{0, layout.count(), {}}}, 3, cuts);
  ASSERT_EQ(shards.parts.size(), 1u);
  const std::vector<size_t>& at = shards.parts[0];
  ASSERT_EQ(at.size(), 4u);
  EXPECT_EQ(at.front(), 0u);
  EXPECT_EQ(at.back(), layout.count());
  for (size_t b : at) EXPECT_TRUE(std::binary_search(cuts.begin(), cuts.end(), b)) << b;
  const size_t even = (layout.count() + 2) / 3;
  for (size_t r = 1; r < 3; ++r) {
    for (size_t c : cuts)
      EXPECT_LE(std::max(at[r], r * even) - std::min(at[r], r * even),
                std::max(c, r * even) - std::min(c, r * even));
  }
}

// AdamW written out in double, one element.
struct Scalar {
  double m, v, p;
};
Scalar adamw_reference(Scalar s, double g, double lr, double b1, double b2, double wd, int step) {
  s.m = b1 * s.m + (1 - b1) * g;
  s.v = b2 * s.v + (1 - b2) * g * g;
  const double update = (s.m / (1 - std::pow(b1, step))) / (std::sqrt(s.v / (1 - std::pow(b2, step))) + 1e-8);
  s.p -= lr * (update + wd * s.p);
  return s;
}

std::vector<float> dequantized(AdamW& adamw, QuantizedMoment& moment, QuantMap map) {
  std::vector<float> out(adamw.count());
  const std::vector<size_t>& blocks = adamw.blocks();
  for (size_t b = 0; b + 1 < blocks.size(); ++b) {
    dequantize_block(moment.codes.data() + blocks[b], blocks[b + 1] - blocks[b], moment.absmax[b], map,
                     out.data() + blocks[b]);
  }
  return out;
}

// mlp.fc and mlp.proj (4 x 36 x 36 = 5184 values: three blocks, the last partial) have 8-bit moments; the
// embeddings and the rest fp32 ones.
GptConfig mixed_config() {
  GptConfig config = small_config();
  config.d_model = 36;  // attn.qkv: 3888 values, under 4096
  config.heads = 2;
  return config;
}

TEST(AdamW8Bit, StepsAgreeWithFp32WithinTheQuantizationBound) {
  const ParameterLayout layout(mixed_config());
  const size_t n = layout.count();
  std::vector<float> g1(n), g2(n), start(n);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (size_t i = 0; i < n; ++i) {
    g1[i] = normal(rng) * 1e-2f * (i % 97 == 0 ? 100.0f : 1.0f);  // a few outliers set the scales
    g2[i] = normal(rng) * 1e-2f;
    start[i] = normal(rng);
  }
  const AdamWConfig config;
  const float lr = 1e-3f;
  AdamW fp32(layout), q8(layout, StatePrecision::k8Bit);
  size_t kept = 0;
  for (const TensorSpec& t : layout.tensors()) {
    EXPECT_EQ(keeps_fp32_state(t), t.name.find("mlp.") == std::string::npos || t.name.ends_with(".bias"))
        << t.name;
    if (keeps_fp32_state(t)) kept += t.count;
  }
  ASSERT_EQ(fp32_state_count(layout, 0, n), kept);
  ASSERT_EQ(q8.m().size(), kept);
  EXPECT_EQ(q8.state_bytes(), 2 * (n + 4 * (q8.blocks().size() - 1)) + 8 * kept);
  EXPECT_LT(q8.state_bytes(), fp32.state_bytes());
  std::vector<float> p32 = start, p8 = start;
  fp32.update(p32.data(), g1.data(), lr, config);
  q8.update(p8.data(), g1.data(), lr, config);
  // Step 1 moves the parameters by the unrounded moments: as fp32 does, bit for bit.
  EXPECT_EQ(p8, p32);
  // The moments it keeps are fp32's within half a code gap of their block's scale.
  const std::vector<float> m = dequantized(q8, q8.m8(), QuantMap::kSigned);
  const std::vector<float> v = dequantized(q8, q8.v8(), QuantMap::kUnsigned);
  const std::vector<size_t>& blocks = q8.blocks();
  for (size_t b = 0; b + 1 < blocks.size(); ++b) {
    if (q8.m8().absmax[b] == 0) continue;  // a tensor with fp32 moments
    for (size_t i = blocks[b]; i < blocks[b + 1]; ++i) {
      ASSERT_LE(std::fabs(m[i] - fp32.m()[i]),
                error_bound(dynamic_map(QuantMap::kSigned), fp32.m()[i], q8.m8().absmax[b]));
      ASSERT_LE(std::fabs(v[i] - fp32.v()[i]),
                error_bound(dynamic_map(QuantMap::kUnsigned), fp32.v()[i], q8.v8().absmax[b]));
    }
  }
  // Step 2 starts from those rounded moments and is AdamW on them; so it lies within what fp32 AdamW does
  // from any moments within the quantization bound of its own (the corners of that box: the update grows
  // with m and shrinks with v).
  const std::vector<float> before = p8, m32 = fp32.m(), v32 = fp32.v();
  const std::vector<float> m_scale = q8.m8().absmax, v_scale = q8.v8().absmax;  // of step 1
  q8.update(p8.data(), g2.data(), lr, config);
  fp32.update(p32.data(), g2.data(), lr, config);
  size_t differ = 0, quantized = 0;
  for (const TensorSpec& t : layout.tensors()) {
    if (keeps_fp32_state(t)) {  // fp32 AdamW, bit for bit
      for (size_t i = t.offset; i < t.offset + t.count; ++i) ASSERT_EQ(p8[i], p32[i]) << t.name;
      continue;
    }
    quantized += t.count;
    const double wd = t.decay ? config.weight_decay : 0.0;
    for (size_t i = t.offset; i < t.offset + t.count; ++i) {
      const Scalar r = adamw_reference({m[i], v[i], before[i]}, g2[i], lr, config.beta1, config.beta2, wd, 2);
      ASSERT_NEAR(p8[i], r.p, 1e-6) << t.name << " [" << i - t.offset << "]";
      const size_t b =
          static_cast<size_t>(std::upper_bound(blocks.begin(), blocks.end(), i) - blocks.begin()) - 1;
      const double em = error_bound(dynamic_map(QuantMap::kSigned), m32[i], m_scale[b]);
      const double ev = error_bound(dynamic_map(QuantMap::kUnsigned), v32[i], v_scale[b]);
      double lo = INFINITY, hi = -INFINITY;
      for (double dm : {-em, em}) {
        for (double dv : {-ev, ev}) {
          const double corner = adamw_reference({m32[i] + dm, std::max(0.0, v32[i] + dv), before[i]}, g2[i],
                                                lr, config.beta1, config.beta2, wd, 2)
                                    .p;
          lo = std::min(lo, corner), hi = std::max(hi, corner);
        }
      }
      ASSERT_GE(p8[i], lo - 1e-6) << t.name << " [" << i - t.offset << "]";
      ASSERT_LE(p8[i], hi + 1e-6) << t.name << " [" << i - t.offset << "]";
      differ += p8[i] != p32[i];
    }
  }
  EXPECT_GT(differ, quantized / 2) << "the rounding of the moments shows";
}

// A step taken in pieces (the fused update's blocks, in the backward's order) is the step taken whole.
TEST(AdamW8Bit, AStepInPiecesIsTheWholeStep) {
  const ParameterLayout layout(mixed_config());
  const size_t n = layout.count();
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  std::vector<float> start(n), g(n);
  for (size_t i = 0; i < n; ++i) start[i] = normal(rng), g[i] = normal(rng) * 1e-2f;
  for (StatePrecision precision : {StatePrecision::kFp32, StatePrecision::k8Bit}) {
    AdamW whole(layout, precision), pieces(layout, precision);
    std::vector<float> a = start, b = start;
    for (int step = 0; step < 3; ++step) {
      whole.update(a.data(), g.data(), 1e-3f, AdamWConfig{});
      pieces.begin_step();
      const std::vector<ParamBlock>& blocks = layout.blocks();
      for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
        pieces.update_range(b.data(), g.data(), 1e-3f, AdamWConfig{}, it->offset, it->offset + it->count);
    }
    EXPECT_EQ(a, b);
    EXPECT_EQ(whole.m(), pieces.m());
    EXPECT_EQ(whole.m8().codes, pieces.m8().codes);
    EXPECT_EQ(whole.v8().absmax, pieces.v8().absmax);
  }
}

TEST(AdamW8Bit, MemoryCheckCountsTwoBytesAndAScalePerParameter) {
  TrainOptions options;
  options.model.vocab = 8192;
  const double fp32 = training_memory(options, 1).optimizer_bytes;
  options.optimizer_states = "8bit";
  const double q8 = training_memory(options, 1).optimizer_bytes;
  EXPECT_DOUBLE_EQ(fp32, 8 * options.model.parameter_count());
  // The embeddings and tensors under 4096 values at 8 bytes, the rest at 2 and a scale per 2048.
  const ParameterLayout layout(options.model);
  const double kept = static_cast<double>(fp32_state_count(layout, 0, layout.count()));
  EXPECT_DOUBLE_EQ(q8, 8 * kept + (2 + 8.0 / 2048) * (options.model.parameter_count() - kept));
  EXPECT_LT(q8, fp32 * 0.6) << "the default model's embeddings are 2.1M of its 5.3M parameters";
}

}  // namespace
}  // namespace triad
