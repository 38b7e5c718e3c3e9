#include "triad/comm/codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "triad/comm/context.h"
#include "triad/comm/kernels.h"
#include "triad/core/blas.h"
#include "triad/core/error.h"

namespace triad::comm {

namespace {

constexpr size_t kMaxCount = INT_MAX / 8;  // MPI counts are int; up to 8 bytes per float (top-K pair: 6)

size_t ceil_div(size_t a, size_t b) {
  return (a + b - 1) / b;
}
size_t round_up(size_t a, size_t b) {
  return ceil_div(a, b) * b;
}

int comm_size(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}
int comm_rank(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

bool done(MPI_Request& request, const char* what) {
  int flag = 0;
  check_mpi(MPI_Test(&request, &flag, MPI_STATUS_IGNORE), what);
  return flag != 0;
}

void scale(float* x, size_t n, float factor) {
  for (size_t i = 0; i < n; ++i) x[i] *= factor;
}

[[noreturn]] void bad_codec_spec(const std::string& text, const std::string& why) {
  fail_usage(
      "--grad-compression {}: {} (expected none, fp16, int8, topk:RATIO, powersgd:RANK or auto[:LIST])", text,
      why);
}

void check_count(const GradRange& bucket) {
  if (bucket.count > kMaxCount) {
    fail("gradient bucket of {} floats is too large for one MPI message (at most {}); lower --bucket-mb",
         bucket.count, kMaxCount);
  }
}

// Bytes of n values in fp16 or int8 (with its scales), padded to 8 so that slots stay aligned.
size_t quantized_bytes(bool int8, size_t n, size_t chunk) {
  return round_up(int8 ? int8_bytes(n, chunk) : 2 * n, 8);
}

// fp16 and int8 split the bucket into one shard per rank (whole int8 chunks); each shard travels as a slot
// of slot_bytes (8-byte aligned) in the all-to-all and the all-gather.
struct QuantizedLayout {
  size_t shard, slot_bytes;

  QuantizedLayout(bool int8, size_t count, int ranks, size_t chunk) {
    size_t step = int8 ? chunk : 8;
    shard = round_up(std::max<size_t>(1, ceil_div(count, ranks)), step);
    slot_bytes = quantized_bytes(int8, shard, chunk);
  }
};

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

// ---------------------------------------------------------------------------------------------------------

// What the flat codecs share: the spec, the bucket, the communicator, the request in flight.
class FlatCodec : public Codec {
 public:
  FlatCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options)
      : spec_(spec),
        bucket_(bucket),
        options_(options),
        comm_(comm),
        ranks_(comm_size(comm)),
        me_(comm_rank(comm)) {}

  std::string name() const override { return spec_.name(); }
  std::vector<Transfer> transfers(int64_t step) const override {
    return codec_transfers(spec_, bucket_, ranks_, options_, step);
  }

 protected:
  CodecSpec spec_;
  GradRange bucket_;
  CodecOptions options_;
  MPI_Comm comm_;
  int ranks_, me_;
  float* data_ = nullptr;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

class NoneCodec : public FlatCodec {
 public:
  using FlatCodec::FlatCodec;

  void start(float* data, int64_t) override {
    data_ = data;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(bucket_.count), MPI_FLOAT, MPI_SUM, comm_,
                             &request_),
              "gradient all-reduce");
  }

  bool poll() override {
    if (!done(request_, "gradient all-reduce")) return false;
    scale(data_, bucket_.count, 1.0f / ranks_);
    return true;
  }
};

// ---------------------------------------------------------------------------------------------------------

class QuantizedCodec : public FlatCodec {
 public:
  QuantizedCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options,
                 int tag)
      : FlatCodec(spec, bucket, comm, options),
        encoding_{spec.kind, options, tag, me_},
        layout_(spec.kind == CodecKind::kInt8, bucket.count, ranks_, options.int8_chunk),
        send_(ranks_ * layout_.slot_bytes),
        receive_(ranks_ * layout_.slot_bytes),
        mean_(layout_.shard) {}

  void start(float* data, int64_t step) override {
    data_ = data;
    step_ = step;
    for (int r = 0; r < ranks_; ++r)
      encoding_.encode(data + begin(r), length(r), &send_[r * layout_.slot_bytes], step, 1, r);
    int slot = static_cast<int>(layout_.slot_bytes);
    check_mpi(MPI_Ialltoall(send_.data(), slot, MPI_BYTE, receive_.data(), slot, MPI_BYTE, comm_, &request_),
              "gradient all-to-all");
    phase_ = 1;
  }

  bool poll() override {
    if (!done(request_, "quantized gradient exchange")) return false;
    if (phase_ == 1) {
      // This rank owns shard me_: sum every rank's copy in rank order, encode the mean once, share it.
      std::fill(mean_.begin(), mean_.end(), 0.0f);
      for (int r = 0; r < ranks_; ++r)
        encoding_.decode(&receive_[r * layout_.slot_bytes], length(me_), mean_.data(), true);
      scale(mean_.data(), length(me_), 1.0f / ranks_);
      encoding_.encode(mean_.data(), length(me_), send_.data(), step_, 2, me_);
      int slot = static_cast<int>(layout_.slot_bytes);
      check_mpi(
          MPI_Iallgather(send_.data(), slot, MPI_BYTE, receive_.data(), slot, MPI_BYTE, comm_, &request_),
          "gradient all-gather");
      phase_ = 2;
      return false;
    }
    for (int r = 0; r < ranks_; ++r)
      encoding_.decode(&receive_[r * layout_.slot_bytes], length(r), data_ + begin(r), false);
    return true;
  }

 private:
  size_t begin(int r) const { return std::min(bucket_.count, r * layout_.shard); }
  size_t length(int r) const { return std::min(bucket_.count, (r + 1) * layout_.shard) - begin(r); }

  Encoding encoding_;
  QuantizedLayout layout_;
  std::vector<uint8_t> send_, receive_;
  std::vector<float> mean_;
  int64_t step_ = 0;
  int phase_ = 0;
};

// ---------------------------------------------------------------------------------------------------------

class TopKCodec : public FlatCodec {
 public:
  TopKCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options)
      : FlatCodec(spec, bucket, comm, options), residual_(bucket.count, 0.0f), scratch_(bucket.count) {}

  void start(float* data, int64_t step) override {
    data_ = data;
    size_t n = bucket_.count;
    k_ = topk_count(n, spec_.ratio, step, options_.topk_warmup_steps);
    // Error feedback: what was not sent before is added to this gradient; what is not sent now stays, and
    // so does the fp16 rounding of what is (acc - fp16(acc), exact in float for normal fp16 values).
    for (size_t i = 0; i < n; ++i) residual_[i] += data[i];
    index_.resize(k_);
    value_.resize(k_);
    half_.resize(k_);
    topk_select(residual_.data(), n, k_, index_.data(), value_.data(), scratch_.data());
    // Wire block of a rank: the k indices Elias-Fano coded, then k fp16 values.
    send_.resize(block_bytes());
    fp16_encode(value_.data(), k_, half_.data());
    fp16_decode(half_.data(), k_, value_.data());
    index_encode(index_.data(), k_, n, send_.data());
    std::memcpy(send_.data() + index_bytes(), half_.data(), 2 * k_);
    for (size_t j = 0; j < k_; ++j) residual_[index_[j]] -= value_[j];
    receive_.resize(block_bytes() * ranks_);
    int bytes = static_cast<int>(block_bytes());
    check_mpi(
        MPI_Iallgather(send_.data(), bytes, MPI_BYTE, receive_.data(), bytes, MPI_BYTE, comm_, &request_),
        "top-k all-gather");
  }

  bool poll() override {
    if (!done(request_, "top-k all-gather")) return false;
    std::fill(data_, data_ + bucket_.count, 0.0f);
    for (int r = 0; r < ranks_; ++r) {  // rank order: identical on all ranks
      const uint8_t* block = receive_.data() + r * block_bytes();
      if (!index_decode(block, k_, bucket_.count, index_.data())) {
        fail("top-k: rank {}'s block does not hold {} increasing indices below {}", r, k_, bucket_.count);
      }
      std::memcpy(half_.data(), block + index_bytes(), 2 * k_);  // not 2-byte aligned
      fp16_decode(half_.data(), k_, value_.data());
      for (size_t j = 0; j < k_; ++j) data_[index_[j]] += value_[j];
    }
    scale(data_, bucket_.count, 1.0f / ranks_);
    return true;
  }

  std::vector<float> save_state() const override { return residual_; }
  void load_state(const std::vector<float>& state) override {
    if (state.size() != residual_.size()) {
      fail("{} state has {} floats; this bucket's residual needs {}", name(), state.size(), residual_.size());
    }
    residual_ = state;
  }

 private:
  size_t index_bytes() const { return index_code_bytes(bucket_.count, k_); }
  size_t block_bytes() const { return topk_block_bytes(bucket_.count, k_); }

  size_t k_ = 0;
  std::vector<float> residual_, scratch_, value_;
  std::vector<uint32_t> index_;
  std::vector<uint16_t> half_;
  std::vector<uint8_t> send_, receive_;
};

// ---------------------------------------------------------------------------------------------------------

class PowerSgdCodec : public FlatCodec {
 public:
  PowerSgdCodec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm, const CodecOptions& options,
                int tag)
      : FlatCodec(spec, bucket, comm, options), r_(spec.rank), residual_(bucket.count, 0.0f) {
    std::vector<Matrix> matrices = bucket.matrices;
    std::sort(matrices.begin(), matrices.end(),
              [](const Matrix& a, const Matrix& b) { return a.offset < b.offset; });
    size_t covered = bucket.offset, p_floats = 0, q_floats = 0;
    for (const Matrix& m : matrices) {
      if (m.offset < covered || m.offset + m.rows * m.cols > bucket.end()) {
        fail("powersgd: a {}x{} matrix at float {} overlaps another or leaves bucket [{}, {})", m.rows,
             m.cols, m.offset, bucket.offset, bucket.end());
      }
      if (!powersgd_compresses(m, r_)) continue;
      add_raw(covered, m.offset);
      factors_.push_back(Factor{m.offset - bucket.offset, m.rows, m.cols, p_floats, q_floats});
      p_floats += m.rows * r_;
      q_floats += m.cols * r_;
      covered = m.offset + m.rows * m.cols;
    }
    add_raw(covered, bucket.end());
    raw_floats_ = 0;
    for (const auto& [begin, end] : raw_) raw_floats_ += end - begin;
    p_.resize(raw_floats_ + p_floats);
    q_.resize(q_floats);
    // The first Q is the same random normal matrix on every rank (seeded), as the sum of M_i Q needs.
    for (size_t i = 0; i < q_.size(); i += 2) {
      uint64_t bits = mix64(options.seed ^ mix64(static_cast<uint64_t>(tag) << 40 ^ i));
      double u1 = (static_cast<double>(bits >> 11) + 0.5) * 0x1p-53;
      double u2 = static_cast<double>(mix64(bits) >> 11) * 0x1p-53;
      double radius = std::sqrt(-2 * std::log(u1));
      q_[i] = static_cast<float>(radius * std::cos(2 * M_PI * u2));
      if (i + 1 < q_.size()) q_[i + 1] = static_cast<float>(radius * std::sin(2 * M_PI * u2));
    }
  }

  void start(float* data, int64_t) override {
    data_ = data;
    size_t at = 0;
    for (const auto& [begin, end] : raw_) {
      std::copy(data + begin, data + end, p_.begin() + at);
      at += end - begin;
    }
    for (const Factor& f : factors_) {
      float* m = residual_.data() + f.offset;  // error feedback: M = gradient + residual
      for (size_t i = 0; i < f.rows * f.cols; ++i) m[i] += data[f.offset + i];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f.rows, r_, f.cols, 1.0f, m, f.cols,
                  q_.data() + f.q, r_, 0.0f, p(f), r_);  // P = M Q
    }
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, p_.data(), static_cast<int>(p_.size()), MPI_FLOAT, MPI_SUM, comm_,
                             &request_),
              "powersgd P all-reduce");
    phase_ = 1;
  }

  bool poll() override {
    if (!done(request_, "powersgd all-reduce")) return false;
    if (phase_ == 1) {
      size_t at = 0;
      for (const auto& [begin, end] : raw_) {
        for (size_t i = begin; i < end; ++i) data_[i] = p_[at++] * (1.0f / ranks_);
      }
      for (const Factor& f : factors_) {
        orthogonalize(p(f), f.rows, r_);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, f.cols, r_, f.rows, 1.0f,
                    residual_.data() + f.offset, f.cols, p(f), r_, 0.0f, q_.data() + f.q, r_);  // Q = M^T P
      }
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, q_.data(), static_cast<int>(q_.size()), MPI_FLOAT, MPI_SUM,
                               comm_, &request_),
                "powersgd Q all-reduce");
      phase_ = 2;
      return false;
    }
    for (const Factor& f : factors_) {
      float* out = data_ + f.offset;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, f.rows, f.cols, r_, 1.0f / ranks_, p(f), r_,
                  q_.data() + f.q, r_, 0.0f, out, f.cols);  // mean M ~ P (sum Q)^T / ranks
      float* m = residual_.data() + f.offset;
      for (size_t i = 0; i < f.rows * f.cols; ++i) m[i] -= out[i];
    }
    return true;
  }

  // The residual of the bucket, then Q (the warm start).
  std::vector<float> save_state() const override {
    std::vector<float> state = residual_;
    state.insert(state.end(), q_.begin(), q_.end());
    return state;
  }
  void load_state(const std::vector<float>& state) override {
    if (state.size() != residual_.size() + q_.size()) {
      fail("{} state has {} floats; this bucket needs {} (residual) + {} (Q)", name(), state.size(),
           residual_.size(), q_.size());
    }
    std::copy(state.begin(), state.begin() + residual_.size(), residual_.begin());
    std::copy(state.begin() + residual_.size(), state.end(), q_.begin());
  }

 private:
  struct Factor {
    size_t offset, rows, cols;  // offset from the bucket's first float
    size_t p, q;                // where its P (after the raw floats) and its Q start
  };

  void add_raw(size_t begin, size_t end) {
    if (end > begin) raw_.emplace_back(begin - bucket_.offset, end - bucket_.offset);
  }
  float* p(const Factor& f) { return p_.data() + raw_floats_ + f.p; }

  int r_;
  std::vector<Factor> factors_;
  std::vector<std::pair<size_t, size_t>> raw_;  // bucket-relative ranges sent uncompressed
  size_t raw_floats_ = 0;
  std::vector<float> residual_, p_, q_;
  int phase_ = 0;
};

// ---------------------------------------------------------------------------------------------------------

class HierarchicalCodec : public Codec {
 public:
  HierarchicalCodec(std::unique_ptr<Codec> leader_codec, const GradRange& bucket, MPI_Comm node_comm,
                    int world, int nodes)
      : leader_codec_(std::move(leader_codec)),
        bucket_(bucket),
        node_comm_(node_comm),
        node_rank_(comm_rank(node_comm)),
        node_size_(comm_size(node_comm)),
        world_(world),
        nodes_(nodes) {}

  std::string name() const override {
    return "hierarchical:" + (leader_codec_ ? leader_codec_->name() : std::string("none"));
  }

  void start(float* data, int64_t step) override {
    data_ = data;
    step_ = step;
    const void* send = node_rank_ == 0 ? MPI_IN_PLACE : data;
    check_mpi(MPI_Ireduce(send, data, count(), MPI_FLOAT, MPI_SUM, 0, node_comm_, &request_),
              "node-local gradient reduce");
    phase_ = 1;
  }

  bool poll() override {
    if (phase_ == 2) {
      if (!leader_codec_->poll()) return false;
      broadcast();
      return false;
    }
    if (!done(request_, "node-local gradient exchange")) return false;
    if (phase_ == 3) return true;
    if (node_rank_ == 0 && leader_codec_) {
      // The leaders average node sums; scaled by nodes / world that is the average over all ranks.
      scale(data_, bucket_.count, static_cast<float>(nodes_) / world_);
      leader_codec_->start(data_, step_);
      phase_ = 2;
      return poll();
    }
    if (node_rank_ == 0) scale(data_, bucket_.count, 1.0f / world_);
    broadcast();
    return false;
  }

  std::vector<Transfer> transfers(int64_t step) const override {
    uint64_t bytes = bucket_.count * sizeof(float);
    std::vector<Transfer> list{{Collective::kReduce, bytes, node_size_}};
    if (leader_codec_) {
      std::vector<Transfer> leaders = leader_codec_->transfers(step);
      list.insert(list.end(), leaders.begin(), leaders.end());
    }
    list.push_back({Collective::kBroadcast, bytes, node_size_});
    return list;
  }

  std::vector<float> save_state() const override {
    return leader_codec_ ? leader_codec_->save_state() : std::vector<float>{};
  }
  void load_state(const std::vector<float>& state) override {
    leader_codec_ ? leader_codec_->load_state(state) : Codec::load_state(state);
  }

 private:
  int count() const { return static_cast<int>(bucket_.count); }
  void broadcast() {
    check_mpi(MPI_Ibcast(data_, count(), MPI_FLOAT, 0, node_comm_, &request_),
              "node-local gradient broadcast");
    phase_ = 3;
  }

  std::unique_ptr<Codec> leader_codec_;
  GradRange bucket_;
  MPI_Comm node_comm_;
  int node_rank_, node_size_, world_, nodes_;
  float* data_ = nullptr;
  int64_t step_ = 0;
  int phase_ = 0;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

// ---------------------------------------------------------------------------------------------------------

// ZeRO-1: each rank receives the average of its part of the bucket. Each rank encodes every owner's part
// (as floats, fp16 or int8), an all-to-all delivers them, and each owner sums what it received in rank
// order, in fp32 and in place — one rounding of each input with fp16/int8, none of the mean. (Open MPI's
// MPI_Ireduce_scatter, used before, moved the bytes unevenly — one rank sent 43 % more — and took 2.55 s per
// step over a 100 Mbit/s link where this exchange takes 1.41 s.)
class ShardReduceCodec : public Codec {
 public:
  ShardReduceCodec(const CodecSpec& spec, const GradRange& bucket, const std::vector<size_t>& owner_begin,
                   MPI_Comm comm, const CodecOptions& options, int tag)
      : spec_(spec),
        comm_(comm),
        ranks_(comm_size(comm)),
        me_(comm_rank(comm)),
        encoding_{spec.kind, options, tag, me_} {
    if (owner_begin.size() != static_cast<size_t>(ranks_) + 1) {
      fail("zero-1: {} shard boundaries for {} ranks", owner_begin.size(), ranks_);
    }
    if (spec.kind != CodecKind::kNone && spec.kind != CodecKind::kFp16 && spec.kind != CodecKind::kInt8) {
      fail("zero-1 averages with none, fp16 or int8, not {}", spec.name());
    }
    // Send: owner r's part encoded, at its byte offset. Receive: every rank's encoding of this rank's part.
    int displacement = 0;
    for (int r = 0; r < ranks_; ++r) {
      size_t begin = std::clamp(owner_begin[r], bucket.offset, bucket.end());
      size_t end = std::clamp(owner_begin[r + 1], bucket.offset, bucket.end());
      begin_.push_back(begin - bucket.offset);
      counts_.push_back(end - begin);
      send_bytes_.push_back(static_cast<int>(encoding_.bytes(counts_.back())));
      send_displs_.push_back(displacement);
      displacement += send_bytes_.back();
    }
    send_.resize(static_cast<size_t>(displacement));
    const int slot = send_bytes_[me_];
    receive_bytes_.assign(ranks_, slot);
    for (int r = 0; r < ranks_; ++r) receive_displs_.push_back(r * slot);
    receive_.resize(static_cast<size_t>(ranks_) * slot);
  }

  std::string name() const override { return spec_.name(); }

  void start(float* data, int64_t step) override {
    data_ = data;
    for (int r = 0; r < ranks_; ++r) {
      if (counts_[r] > 0) encoding_.encode(data + begin_[r], counts_[r], &send_[send_displs_[r]], step, 1, r);
    }
    check_mpi(MPI_Ialltoallv(send_.data(), send_bytes_.data(), send_displs_.data(), MPI_BYTE, receive_.data(),
                             receive_bytes_.data(), receive_displs_.data(), MPI_BYTE, comm_, &request_),
              "zero-1 gradient all-to-all");
  }

  bool poll() override {
    if (!done(request_, "zero-1 gradient all-to-all")) return false;
    float* mine = data_ + begin_[me_];
    const size_t n = counts_[me_];
    std::fill(mine, mine + n, 0.0f);
    for (int r = 0; r < ranks_; ++r) encoding_.decode(&receive_[receive_displs_[r]], n, mine, true);
    scale(mine, n, 1.0f / ranks_);
    return true;
  }

  std::vector<Transfer> transfers(int64_t) const override {
    return {{Collective::kAlltoall, send_.size(), ranks_}};
  }

 private:
  CodecSpec spec_;
  MPI_Comm comm_;
  int ranks_, me_;
  Encoding encoding_;
  std::vector<size_t> begin_, counts_;  // floats from the bucket's start to each owner's part, and in it
  // Byte counts and offsets of the all-to-all, read by MPI until it completes.
  std::vector<int> send_bytes_, send_displs_, receive_bytes_, receive_displs_;
  std::vector<uint8_t> send_, receive_;
  float* data_ = nullptr;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

}  // namespace

size_t Encoding::bytes(size_t n) const {
  return kind == CodecKind::kNone ? 4 * n : quantized_bytes(kind == CodecKind::kInt8, n, options.int8_chunk);
}

void Encoding::encode(const float* x, size_t n, uint8_t* out, int64_t step, int phase, int shard) const {
  if (kind == CodecKind::kNone) return static_cast<void>(std::memcpy(out, x, 4 * n));
  if (kind == CodecKind::kFp16) return fp16_encode(x, n, reinterpret_cast<uint16_t*>(out));
  uint64_t noise = 0;
  if (options.int8_stochastic) {
    noise = mix64(options.seed ^ mix64(static_cast<uint64_t>(tag) << 32 | static_cast<uint32_t>(me)) ^
                  mix64(static_cast<uint64_t>(step) * 4 + phase) ^ mix64(~static_cast<uint64_t>(shard)));
    noise |= 1;  // 0 would mean nearest rounding
  }
  int8_encode(x, n, options.int8_chunk, noise, out);
}

void Encoding::decode(const uint8_t* in, size_t n, float* out, bool add) const {
  switch (kind) {
    case CodecKind::kInt8:
      return add ? int8_decode_add(in, n, options.int8_chunk, out)
                 : int8_decode(in, n, options.int8_chunk, out);
    case CodecKind::kFp16: {
      const uint16_t* half = reinterpret_cast<const uint16_t*>(in);
      return add ? fp16_decode_add(half, n, out) : fp16_decode(half, n, out);
    }
    default: {
      const float* x = reinterpret_cast<const float*>(in);
      if (!add) return static_cast<void>(std::memcpy(out, x, 4 * n));
      for (size_t i = 0; i < n; ++i) out[i] += x[i];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

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

void Codec::load_state(const std::vector<float>& state) {
  if (!state.empty())
    fail("codec {} keeps no state, but a state of {} floats was given", name(), state.size());
}

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                  const CodecOptions& options, int tag) {
  check_count(bucket);
  if (options.int8_chunk == 0) fail_usage("--int8-chunk must be positive");
  switch (spec.kind) {
    case CodecKind::kNone:
      return std::make_unique<NoneCodec>(spec, bucket, comm, options);
    case CodecKind::kFp16:
    case CodecKind::kInt8:
      return std::make_unique<QuantizedCodec>(spec, bucket, comm, options, tag);
    case CodecKind::kTopK:
      return std::make_unique<TopKCodec>(spec, bucket, comm, options);
    case CodecKind::kPowerSgd:
      return std::make_unique<PowerSgdCodec>(spec, bucket, comm, options, tag);
    case CodecKind::kAuto:
      break;
  }
  fail("make_codec: resolve auto to a codec first");
}

std::unique_ptr<Codec> make_hierarchical(std::unique_ptr<Codec> leader_codec, const GradRange& bucket,
                                         MPI_Comm node_comm, int world, int nodes) {
  check_count(bucket);
  return std::make_unique<HierarchicalCodec>(std::move(leader_codec), bucket, node_comm, world, nodes);
}

std::unique_ptr<Codec> make_shard_reduce(const CodecSpec& spec, const GradRange& bucket,
                                         const std::vector<size_t>& owner_begin, MPI_Comm comm,
                                         const CodecOptions& options, int tag) {
  check_count(bucket);
  return std::make_unique<ShardReduceCodec>(spec, bucket, owner_begin, comm, options, tag);
}

}  // namespace triad::comm
