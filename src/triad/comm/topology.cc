#include "triad/comm/topology.h"

#include <fmt/format.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "triad/comm/collectives.h"
#include "triad/comm/context.h"
#include "triad/comm/kernels.h"
#include "triad/comm/placement.h"
#include "triad/core/blas.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/statistics.h"

namespace triad::comm {

namespace {

constexpr int kProbeTag = 7;

// Point-to-point helpers that never wait longer than --comm-timeout.
void send(Context& context, const void* data, size_t bytes, int peer, const char* what) {
  MPI_Request request;
  check_mpi(MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, peer, kProbeTag, context.comm(), &request),
            what);
  context.wait(&request, 1, fmt::format("{} with rank {}", what, peer));
}

void receive(Context& context, void* data, size_t bytes, int peer, const char* what) {
  MPI_Request request;
  check_mpi(MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE, peer, kProbeTag, context.comm(), &request),
            what);
  context.wait(&request, 1, fmt::format("{} with rank {}", what, peer));
}

// One-way latency between a and b (half the mean round trip of one byte), measured on a.
double latency_us(Context& context, int a, int b, int round_trips) {
  char byte = 0;
  bool first = context.rank() == a;
  int peer = first ? b : a;
  Clock::time_point start;
  for (int i = -5; i < round_trips; ++i) {  // 5 untimed round trips set up the connection
    if (i == 0) start = Clock::now();
    if (first) {
      send(context, &byte, 1, peer, "latency probe");
      receive(context, &byte, 1, peer, "latency probe");
    } else {
      receive(context, &byte, 1, peer, "latency probe");
      send(context, &byte, 1, peer, "latency probe");
    }
  }
  return seconds_since(start) / (2.0 * round_trips) * 1e6;
}

// Bandwidth between this rank and `peer` in MB/s while both send at once, as every collective we price has
// each rank sending and receiving at the same time: `messages` messages each way after a one-byte exchange
// lines the two up, the rate of this rank's outgoing stream timed until both streams are done; the faster
// of two ways of sending them. A one-way stream would overstate a duplex link that cannot carry both
// directions at full rate (over bench/comm/slow_link.sh's veth one way gave 11.9 MB/s, collectives about
// half that). Which way fills a link depends on the transport, and a collective's pipelined steps get the
// better one: Open MPI's shared-memory transport moved 8 x 4 MiB posted at once at 0.56 GB/s each way and
// one at a time at 3.5-7.8 GB/s, while over TCP one at a time leaves the link idle between messages (6.0
// MB/s on that veth against 10 with all eight in flight, where B's gradient all-reduce reached ~10).
double exchange_MBps(Context& context, int peer, const ProbeOptions& options) {
  const int messages = options.bandwidth_messages;
  const int bytes = static_cast<int>(options.bandwidth_bytes);
  std::vector<char> out(options.bandwidth_bytes, 1), in(options.bandwidth_bytes * messages);
  const std::string what = fmt::format("bandwidth probe with rank {}", peer);
  auto exchange = [&](int in_flight, int size) {  // in_flight messages each way, posted at once
    std::vector<MPI_Request> requests(2 * in_flight);
    for (int m = 0; m < in_flight; ++m) {
      check_mpi(MPI_Irecv(in.data() + static_cast<size_t>(m) * size, size, MPI_BYTE, peer, kProbeTag,
                          context.comm(), &requests[2 * m]),
                "bandwidth probe");
      check_mpi(MPI_Isend(out.data(), size, MPI_BYTE, peer, kProbeTag, context.comm(), &requests[2 * m + 1]),
                "bandwidth probe");
    }
    context.wait(requests.data(), 2 * in_flight, what);
  };
  exchange(1, bytes);  // warm-up: sets up the connection both ways
  // Each way streams `repeats` times, interleaved, and keeps its median: over that veth successive streams
  // of one probe read 9.6 to 11.9 MB/s, one stream apiece read 9.2 to 11.7 in three probes, and the
  // planner's communication-bound predictions followed the reading (docs/results/2026-12-06-link-probe.md).
  std::vector<double> one_at_a_time, all_at_once;
  for (int repeat = 0; repeat < options.bandwidth_repeats; ++repeat) {
    for (int in_flight : {1, messages}) {
      exchange(1, 1);  // lines the two ranks up
      Clock::time_point start = Clock::now();
      for (int sent = 0; sent < messages; sent += in_flight) exchange(in_flight, bytes);
      (in_flight == 1 ? one_at_a_time : all_at_once)
          .push_back(static_cast<double>(messages) * bytes / seconds_since(start) / 1e6);
    }
  }
  return std::max(median(one_at_a_time), median(all_at_once));
}

// Seconds per call of body, after one untimed call, over at least `budget` seconds.
template <typename Body>
double seconds_per_call(double budget, Body&& body) {
  body();
  int calls = 0;
  Clock::time_point start = Clock::now();
  do {
    body();
    ++calls;
  } while (seconds_since(start) < budget);
  return seconds_since(start) / calls;
}

}  // namespace

// The best of three windows of 0.1 s: a passing disturbance (another process for a moment) slows one window,
// while ranks that share a core for good slow all three, as training would see them. (One window of 0.2 s
// once measured a rank at 47 GFLOP/s beside its neighbour's 91, and the planner's every 2-rank prediction
// doubled.)
double measure_sgemm_gflops(int n) {
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  double seconds = 1e30;
  for (int window = 0; window < 3; ++window) {
    seconds = std::min(seconds, seconds_per_call(0.1, [&] {
                         cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n,
                                     b.data(), n, 0.0f, c.data(), n);
                       }));
  }
  return 2.0 * n * n * n / seconds / 1e9;
}

namespace {

// Encode + decode time per float of each codec's arithmetic (top-K: selecting 1 %, coding and decoding the
// indices, scattering the values back;
// PowerSGD: a rank-4 round on a square matrix, error feedback included — its thin products are bound by
// memory, not by SGEMM's peak).
std::map<std::string, double> codec_ns_per_float(size_t n) {
  std::vector<float> x(n), y(n), scratch(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(mix64(i) >> 40) * 0x1p-24f - 0.5f;
  std::vector<uint16_t> half(n);
  std::vector<uint8_t> bytes(int8_bytes(n, 256));
  size_t k = std::max<size_t>(1, n / 100);
  std::vector<uint32_t> index(k);
  std::vector<float> value(k);
  std::vector<uint8_t> index_code(index_code_bytes(n, k));
  auto time_ns = [&](auto&& body) { return seconds_per_call(0.05, body) * 1e9 / n; };
  const int rank = 4;
  const size_t side = static_cast<size_t>(std::sqrt(static_cast<double>(n)));
  std::vector<float> residual(side * side, 0.0f), p(side * rank), q(side * rank, 0.5f);
  auto powersgd_round = [&] {
    for (size_t i = 0; i < side * side; ++i) residual[i] += x[i];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, side, rank, side, 1.0f, residual.data(), side,
                q.data(), rank, 0.0f, p.data(), rank);
    orthogonalize(p.data(), side, rank);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, side, rank, side, 1.0f, residual.data(), side,
                p.data(), rank, 0.0f, q.data(), rank);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, side, side, rank, 1.0f, p.data(), rank, q.data(),
                rank, 0.0f, y.data(), side);
    for (size_t i = 0; i < side * side; ++i) residual[i] -= y[i];
  };
  return {
      {"powersgd", seconds_per_call(0.05, powersgd_round) * 1e9 / (side * side)},
      {"fp16", time_ns([&] {
         fp16_encode(x.data(), n, half.data());
         fp16_decode(half.data(), n, y.data());
       })},
      {"int8", time_ns([&] {
         int8_encode(x.data(), n, 256, 0, bytes.data());
         int8_decode(bytes.data(), n, 256, y.data());
       })},
      {"topk", time_ns([&] {
         topk_select(x.data(), n, k, index.data(), value.data(), scratch.data());
         index_encode(index.data(), k, n, index_code.data());
         if (!index_decode(index_code.data(), k, n, index.data())) fail("probe: top-k index code broken");
         std::fill(y.begin(), y.end(), 0.0f);
         for (size_t j = 0; j < k; ++j) y[index[j]] += value[j];
       })},
  };
}

// Time of one collective over the ring of `group` (or, for all-to-all, every pair), Eq. 7 per link.
void price(const Topology& t, const std::vector<int>& group, const Transfer& transfer, Prediction& out) {
  int p = static_cast<int>(group.size());
  if (p <= 1) return;
  uint64_t bytes = bytes_sent(transfer);
  int steps = message_steps(transfer);
  double worst_wire = 0, worst_latency = 0, worst = -1;
  for (int i = 0; i < p; ++i) {
    double wire = 0, latency = 0;
    if (transfer.kind == Collective::kAlltoall) {
      for (int j = 0; j < p; ++j) {
        if (j == i) continue;
        wire += transfer.bytes / p / (t.bandwidth_MBps[group[i]][group[j]] * 1e6);
        latency += t.latency_us[group[i]][group[j]] * 1e-6;
      }
    } else {
      int next = group[(i + 1) % p];
      wire = bytes / (t.bandwidth_MBps[group[i]][next] * 1e6);
      latency = steps * t.latency_us[group[i]][next] * 1e-6;
    }
    if (wire + latency > worst) {
      worst = wire + latency;
      worst_wire = wire;
      worst_latency = latency;
    }
  }
  out.wire_s += worst_wire;
  out.latency_s += worst_latency;
  out.bytes += bytes;
}

}  // namespace

Topology probe_topology(Context& context, const ProbeOptions& options) {
  int world = context.world(), me = context.rank();
  Topology t;
  t.world = world;
  t.ranks.resize(world);
  t.latency_us.assign(world, std::vector<double>(world, 0));
  t.bandwidth_MBps.assign(world, std::vector<double>(world, 0));

  // Compute speed twice, before and after everything else, every rank at once each time (as training runs
  // them), and the better kept: a slowdown of seconds passes one of the two. (Measured once, a run's probe
  // read one rank at 74 GFLOP/s beside its neighbour's 96, and the single-rank probe a minute before at 77,
  // while the runs that followed went at the usual ~100: every prediction came out 15-20 % slow,
  // docs/results/2026-12-06-zero1-buckets.md.)
  if (context.uses_mpi()) barrier(context, "topology probe");
  const double sgemm_gflops_first = measure_sgemm_gflops(options.gemm_size);

  // Links, one pair at a time so that no two measurements share the wires.
  std::vector<double> latency(world * world, 0), bandwidth(world * world, 0);
  for (int a = 0; a < world; ++a) {
    for (int b = a + 1; b < world; ++b) {
      if (me == a || me == b) {
        double us = latency_us(context, a, b, options.latency_round_trips);
        int peer = me == a ? b : a;
        bandwidth[me * world + peer] = exchange_MBps(context, peer, options);
        if (me == a) latency[a * world + b] = latency[b * world + a] = us;
      }
      barrier(context, "topology probe");
    }
  }

  // Every rank's compute speed, measured at the same time as training would run them.
  if (context.uses_mpi()) barrier(context, "topology probe");
  // Each rank's numbers travel as doubles: node index, SGEMM GFLOP/s at once and alone, then the codecs in
  // kCodecs order.
  const std::vector<std::string> kCodecs = {"fp16", "int8", "topk", "powersgd"};
  std::map<std::string, double> codec_ns = codec_ns_per_float(options.codec_floats);
  const double sgemm_gflops = std::max(sgemm_gflops_first, measure_sgemm_gflops(options.gemm_size));
  // A core's speed: the ranks of each node one after another (every node at once), the others waiting.
  // Ranks that outnumber their node's cores read their share of one above; the planner also needs what one
  // of them runs at while the others wait (parallel/shared_cores.h).
  // (`world` turns, as no node has more ranks: a barrier costs nothing beside a measurement.)
  double sgemm_alone_gflops = 0;
  for (int turn = 0; turn < world; ++turn) {
    if (context.node_rank() == turn) sgemm_alone_gflops = measure_sgemm_gflops(options.gemm_size);
    barrier(context, "topology probe");
  }
  std::vector<double> mine = {sgemm_gflops, sgemm_alone_gflops};
  for (const std::string& codec : kCodecs) mine.push_back(codec_ns.at(codec));
  std::vector<double> all(mine.size() * world);
  if (context.uses_mpi()) {
    MPI_Request requests[3];
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, latency.data(), world * world, MPI_DOUBLE, MPI_SUM, context.comm(),
                             &requests[0]),
              "topology probe");
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, bandwidth.data(), world * world, MPI_DOUBLE, MPI_SUM,
                             context.comm(), &requests[1]),
              "topology probe");
    check_mpi(MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                             static_cast<int>(mine.size()), MPI_DOUBLE, context.comm(), &requests[2]),
              "topology probe");
    context.wait(requests, 3, "topology probe");
  } else {
    all = mine;
  }
  place_ranks(context, t);
  for (int r = 0; r < world; ++r) {
    const double* v = &all[r * mine.size()];
    RankInfo& info = t.ranks[r];
    info.sgemm_gflops = v[0];
    info.sgemm_alone_gflops = v[1];
    for (size_t c = 0; c < kCodecs.size(); ++c) info.codec_ns_per_float[kCodecs[c]] = v[2 + c];
    for (int c = 0; c < world; ++c) {
      t.latency_us[r][c] = latency[r * world + c];
      t.bandwidth_MBps[r][c] = bandwidth[r * world + c];
    }
  }
  return t;
}

std::vector<int> codec_group(const Topology& topology, bool hierarchical) {
  std::vector<int> group;
  std::vector<int> nodes_seen;
  for (int r = 0; r < topology.world; ++r) {
    int node = topology.ranks[r].node;
    if (hierarchical && std::find(nodes_seen.begin(), nodes_seen.end(), node) != nodes_seen.end()) continue;
    nodes_seen.push_back(node);
    group.push_back(r);
  }
  return group;
}

Prediction predict(const Topology& t, const std::vector<int>& group, const GradRange& bucket,
                   const CodecSpec& codec, const CodecOptions& options) {
  Prediction out;
  out.codec = codec;
  int p = static_cast<int>(group.size());
  // After the warm-up: the steady state is what the choice is for.
  for (const Transfer& transfer : codec_transfers(codec, bucket, p, options, options.topk_warmup_steps)) {
    price(t, group, transfer, out);
  }
  // The slowest rank sets the pace of a collective.
  const char* measured = codec.kind == CodecKind::kFp16       ? "fp16"
                         : codec.kind == CodecKind::kInt8     ? "int8"
                         : codec.kind == CodecKind::kTopK     ? "topk"
                         : codec.kind == CodecKind::kPowerSgd ? "powersgd"
                                                              : nullptr;
  double ns = 0, gflops = 1e30;
  for (int r : group) {
    const RankInfo& info = t.ranks[r];
    gflops = std::min(gflops, std::max(info.sgemm_gflops, 1e-3));
    if (measured) ns = std::max(ns, info.codec_ns_per_float.at(measured));
  }
  if (p > 1 && codec.kind == CodecKind::kPowerSgd) {
    // Measured at rank 4, where its thin products are bound by memory; a higher rank costs proportionally
    // more, and never less than the products P = M Q, Q = M^T P, M = P Q^T at SGEMM's peak.
    double matrix_floats = 0, flops = 0;
    for (const Matrix& m : bucket.matrices) {
      if (!powersgd_compresses(m, codec.rank)) continue;
      matrix_floats += static_cast<double>(m.rows) * m.cols;
      flops += 3 * 2.0 * m.rows * m.cols * codec.rank;
    }
    out.compute_s =
        std::max(ns * 1e-9 * std::max(1.0, codec.rank / 4.0) * matrix_floats, flops / (gflops * 1e9));
  } else if (p > 1) {
    // fp16 / int8 encode and decode every float twice (shards out, means back); top-K selects once.
    out.compute_s = ns * 1e-9 * bucket.count * (codec.kind == CodecKind::kTopK ? 1 : 2);
  }
  out.seconds = out.wire_s + out.latency_s + out.compute_s;
  return out;
}

Prediction price_transfers(const Topology& topology, const std::vector<int>& group,
                           const std::vector<Transfer>& transfers) {
  Prediction out;
  for (const Transfer& transfer : transfers) price(topology, group, transfer, out);
  out.seconds = out.wire_s + out.latency_s;
  return out;
}

std::vector<Prediction> choose_codec(const Topology& topology, const std::vector<int>& group,
                                     const GradRange& bucket, const CodecSpec& auto_spec,
                                     const CodecOptions& options) {
  std::vector<Prediction> all = {predict(topology, group, bucket, CodecSpec{}, options)};
  for (const CodecSpec& candidate : auto_spec.candidates) {
    all.push_back(predict(topology, group, bucket, candidate, options));
  }
  // none stays first unless a candidate is strictly faster; the rest follow fastest first.
  auto best = std::min_element(all.begin() + 1, all.end(), [](const Prediction& a, const Prediction& b) {
    return a.seconds < b.seconds;
  });
  if (best != all.end() && best->seconds < all[0].seconds) std::iter_swap(all.begin(), best);
  std::sort(all.begin() + 1, all.end(),
            [](const Prediction& a, const Prediction& b) { return a.seconds < b.seconds; });
  return all;
}

}  // namespace triad::comm
