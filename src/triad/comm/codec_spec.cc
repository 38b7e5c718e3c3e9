#include "triad/comm/codec_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "triad/comm/codec_internal.h"
#include "triad/comm/kernels.h"
#include "triad/core/error.h"

namespace triad::comm {

namespace {

[[noreturn]] void bad_codec_spec(const std::string& text, const std::string& why) {
  fail_usage(
      "--grad-compression {}: {} (expected none, fp16, int8, topk:RATIO, powersgd:RANK or auto[:LIST])", text,
      why);
}

size_t powersgd_factor_floats(const GradRange& bucket, int rank, bool p_side) {
  size_t floats = 0;
  for (const Matrix& m : bucket.matrices) {
    if (powersgd_compresses(m, rank)) floats += (p_side ? m.rows : m.cols) * rank;
  }
  return floats;
}

size_t powersgd_matrix_floats(const GradRange& bucket, int rank) {
  size_t floats = 0;
  for (const Matrix& m : bucket.matrices) {
    if (powersgd_compresses(m, rank)) floats += m.rows * m.cols;
  }
  return floats;
}

}  // namespace

std::string CodecSpec::name() const {
  switch (kind) {
    case CodecKind::kNone:
      return "none";
    case CodecKind::kFp16:
      return "fp16";
    case CodecKind::kInt8:
      return "int8";
    case CodecKind::kTopK:
      return fmt::format("topk:{:g}", ratio);
    case CodecKind::kPowerSgd:
      return fmt::format("powersgd:{}", rank);
    case CodecKind::kAuto:
      break;
  }
  std::vector<std::string> names;
  for (const CodecSpec& c : candidates) names.push_back(c.name());
  return "auto:" + fmt::format("{}", fmt::join(names, ","));
}

CodecSpec parse_codec_spec(const std::string& text) {
  auto bad = [&](const std::string& why) { bad_codec_spec(text, why); };
  CodecSpec spec;
  std::string head = text.substr(0, text.find(':'));
  std::string arg = text.size() > head.size() ? text.substr(head.size() + 1) : "";
  bool has_arg = text.size() > head.size();
  if (head == "auto") {
    spec.kind = CodecKind::kAuto;
    std::string list = has_arg ? arg : "fp16,int8,topk:0.01,powersgd:4";
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = std::min(list.find(',', start), list.size());
      CodecSpec candidate = parse_codec_spec(list.substr(start, comma - start));
      if (candidate.kind == CodecKind::kAuto) bad("auto cannot choose auto");
      if (candidate.kind != CodecKind::kNone) spec.candidates.push_back(candidate);
      start = comma + 1;
    }
    return spec;
  }
  if (head == "none" || head == "fp16" || head == "int8") {
    if (has_arg) bad("'" + head + "' takes no argument");
    spec.kind = head == "none" ? CodecKind::kNone : head == "fp16" ? CodecKind::kFp16 : CodecKind::kInt8;
    return spec;
  }
  char* end = nullptr;
  if (head == "topk") {
    spec.kind = CodecKind::kTopK;
    spec.ratio = std::strtod(arg.c_str(), &end);
    if (arg.empty() || *end || !(spec.ratio > 0 && spec.ratio <= 1))
      bad("RATIO must be in (0, 1], e.g. topk:0.01");
    return spec;
  }
  if (head == "powersgd") {
    spec.kind = CodecKind::kPowerSgd;
    long rank = std::strtol(arg.c_str(), &end, 10);
    if (arg.empty() || *end || rank < 1 || rank > 1024)
      bad("RANK must be an integer in [1, 1024], e.g. powersgd:4");
    spec.rank = static_cast<int>(rank);
    return spec;
  }
  bad_codec_spec(text, "unknown codec '" + head + "'");
}

size_t topk_count(size_t n, double ratio, int64_t step, int64_t warmup_steps) {
  constexpr double kStart = 0.25;  // DGC starts its warm-up at 75 % sparsity
  double density = ratio;
  if (step < warmup_steps && ratio < kStart) {
    density = kStart * std::pow(ratio / kStart, static_cast<double>(step) / warmup_steps);
  }
  return std::min(n, std::max<size_t>(1, static_cast<size_t>(std::llround(density * n))));
}

size_t topk_block_bytes(size_t n, size_t k) {
  return index_code_bytes(n, k) + 2 * k;
}

bool powersgd_compresses(const Matrix& m, int rank) {
  return m.rows > 1 && m.cols > 1 && static_cast<uint64_t>(rank) * (m.rows + m.cols) < m.rows * m.cols;
}

uint64_t bytes_sent(const Transfer& t) {
  uint64_t p = t.ranks;
  if (p <= 1) return 0;
  switch (t.kind) {
    case Collective::kAllreduce:
      return 2 * (p - 1) * t.bytes / p;
    case Collective::kAllgather:
      return (p - 1) * t.bytes;
    case Collective::kAlltoall:
    case Collective::kReduceScatter:
    case Collective::kReduce:
    case Collective::kBroadcast:
      return (p - 1) * t.bytes / p;
  }
  return 0;
}

int message_steps(const Transfer& t) {
  int p = t.ranks;
  if (p <= 1) return 0;
  switch (t.kind) {
    case Collective::kAllreduce:
      return 2 * (p - 1);
    case Collective::kAllgather:
    case Collective::kAlltoall:
    case Collective::kReduceScatter:
      return p - 1;
    case Collective::kReduce:
    case Collective::kBroadcast:
      return static_cast<int>(std::ceil(std::log2(p)));
  }
  return 0;
}

std::vector<Transfer> codec_transfers(const CodecSpec& spec, const GradRange& bucket, int ranks,
                                      const CodecOptions& options, int64_t step) {
  uint64_t n = bucket.count;
  switch (spec.kind) {
    case CodecKind::kNone:
      return {{Collective::kAllreduce, n * 4, ranks}};
    case CodecKind::kFp16:
    case CodecKind::kInt8: {
      QuantizedLayout layout(spec.kind == CodecKind::kInt8, n, ranks, options.int8_chunk);
      return {{Collective::kAlltoall, ranks * layout.slot_bytes, ranks},
              {Collective::kAllgather, layout.slot_bytes, ranks}};
    }
    case CodecKind::kTopK:
      return {{Collective::kAllgather,
               topk_block_bytes(n, topk_count(n, spec.ratio, step, options.topk_warmup_steps)), ranks}};
    case CodecKind::kPowerSgd: {
      uint64_t raw = n - powersgd_matrix_floats(bucket, spec.rank);
      return {{Collective::kAllreduce, 4 * (raw + powersgd_factor_floats(bucket, spec.rank, true)), ranks},
              {Collective::kAllreduce, 4 * powersgd_factor_floats(bucket, spec.rank, false), ranks}};
    }
    case CodecKind::kAuto:
      break;
  }
  fail("codec_transfers: auto has no transfers of its own");
}

}  // namespace triad::comm
