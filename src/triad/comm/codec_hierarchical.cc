#include "triad/comm/codec_internal.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace triad::comm {

namespace {

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

}  // namespace

std::unique_ptr<Codec> make_hierarchical(std::unique_ptr<Codec> leader_codec, const GradRange& bucket,
                                         MPI_Comm node_comm, int world, int nodes) {
  check_count(bucket);
  return std::make_unique<HierarchicalCodec>(std::move(leader_codec), bucket, node_comm, world, nodes);
}

}  // namespace triad::comm
