#pragma once
// The process's place in a data-parallel job: rank, world, node-local group, node leaders.
//
// A command that talks to other ranks opens one Context and passes it to what it runs (the trainer, the
// probe). Under a launcher (mpirun, srun) Context::open() starts MPI with MPI_THREAD_MULTIPLE, so that
// GradSync's progress thread and the trainer may both call MPI. A process started on its own is rank 0 of 1
// and never calls MPI.
//
// Nothing here waits forever: every wait on other ranks goes through wait() (or a loop that calls
// on_timeout()), which after --comm-timeout seconds asks every rank whether it is alive and fails with
// one line naming those that do not answer. Peers answer such questions whenever they wait in
// communication themselves (serve_pings()); a rank that is dead, stuck or far behind does not. A rank doing
// long work of its own that others wait on (rank 0 writing a checkpoint) says so in a BusyScope, and the
// waiting ranks keep waiting, warning every --comm-timeout, instead of failing.

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "triad/core/clock.h"

namespace triad::comm {

struct ContextOptions {
  double timeout_s = 300;  // --comm-timeout: the longest any wait on other ranks may last
  // 0: the ranks that share memory form a node (MPI_Comm_split_type). k > 0: every k consecutive ranks
  // form a node, to exercise --hierarchical on one machine.
  int ranks_per_node = 0;
};

class Context {
 public:
  // Collective under a launcher: every rank opens it. At most one per process (MPI starts once).
  static std::unique_ptr<Context> open(const ContextOptions& options = {});
  // Releases the communicators and the liveness receive; MPI itself ends in shutdown(). While an exception
  // unwinds a multi-rank job it leaves them alone: shutdown() aborts the job, and a release could wait on
  // a peer that is gone.
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  bool uses_mpi() const { return uses_mpi_; }
  bool thread_multiple() const { return thread_multiple_; }
  double timeout_s() const { return options_.timeout_s; }

  // All ranks (a duplicate of MPI_COMM_WORLD that returns errors instead of aborting); MPI_COMM_NULL
  // without MPI. Collectives of the gradient path use their own duplicates made with dup_comm().
  MPI_Comm comm() const { return comm_; }
  MPI_Comm node_comm() const { return node_comm_; }      // the ranks of this node
  MPI_Comm leader_comm() const { return leader_comm_; }  // rank 0 of each node; MPI_COMM_NULL elsewhere
  int node_rank() const { return node_rank_; }
  int node_size() const { return node_size_; }
  int node_index() const { return node_index_; }
  int node_count() const { return node_count_; }
  // A duplicate of `comm` (collective over it, within the timeout), freed with the context.
  MPI_Comm dup_comm(MPI_Comm comm);
  // Takes a communicator made from these (MPI_Comm_split) to free with the context.
  void adopt_comm(MPI_Comm comm) { owned_comms_.push_back(comm); }
  // A context over the ranks that give the same `color` (ordered by `key`), as MPI_Comm_split makes them:
  // a data-, tensor- or pipeline-parallel group. Collective over this context; a negative color takes no
  // part and gets nullptr. Its waits answer and ask liveness questions through the job's first context, so
  // a dead rank is named the same way whichever group waits on it. Destroy it before its parent.
  std::unique_ptr<Context> split(int color, int key, const std::string& what);

  // Waits for `count` requests (completing them). After timeout_s() it calls on_timeout(), which fails
  // unless the ranks it waits for are busy.
  void wait(MPI_Request* requests, int count, const std::string& what);
  // Answers liveness questions from ranks that timed out. Call it from every loop that waits on MPI.
  void serve_pings();
  // Between two tests of a loop that waits on MPI (`spins` tests so far, waiting since `started`): nothing
  // for the first 1000 (latency), then a yield; where the host runs more ranks than it has CPUs, a wait
  // past 1 ms sleeps 50 µs instead, so that the ranks that work get the cores (a pipeline stage waits
  // for its neighbours; measured with 4 ranks on 2 cores, docs/parallel.md 'Ranks that share cores').
  void pause_in_wait(int spins, Clock::time_point started);
  // Call once a wait exceeds timeout_s(). Asks every other rank whether it is alive (waiting up to a few
  // seconds for answers). If the ranks this one waits for are busy (BusyScope), warns and returns: the
  // caller waits another timeout_s(); so it returns, silently, when they have only just begun to wait, and
  // when `finished()` (the caller's own test of what it waits for) turns true while it asks: a peer that
  // completed the operation and went on to exit answers no more, and is not hung. Otherwise throws a
  // triad::Error: "<what>: no answer from rank 3 within 300 s (--comm-timeout)". Thread-safe.
  void on_timeout(const std::string& what, double waited_s, const std::function<bool()>& finished);

  // Marks this rank as waiting in communication for the duration of a scope; answers to liveness questions
  // say whether a rank is waiting and how many waits it has entered, which tells a stuck rank from a late
  // one.
  class WaitScope {
   public:
    explicit WaitScope(Context& context);
    ~WaitScope();

   private:
    Context& context_;
  };

  // Marks long local work that other ranks may wait on, e.g. BusyScope busy(ctx, "writing checkpoint
  // step 600"): while it lasts a thread answers liveness questions with `what` (first 47 bytes).
  // Needs MPI_THREAD_MULTIPLE; without it (or without peers) it does nothing.
  class BusyScope {
   public:
    BusyScope(Context& context, const std::string& what);
    ~BusyScope();

   private:
    Context& context_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };

 private:
  Context() = default;
  // The job's first context, which runs the liveness protocol for every context split from it.
  Context& root() { return parent_ ? *parent_ : *this; }
  void start_mpi();
  void split_nodes();

  ContextOptions options_;
  Context* parent_ = nullptr;  // the context this one was split from (its root runs liveness)
  bool uses_mpi_ = false;
  bool thread_multiple_ = false;
  bool ranks_share_cores_ = false;  // this host runs more ranks than it has CPUs
  int rank_ = 0, world_ = 1;
  int node_rank_ = 0, node_size_ = 1, node_index_ = 0, node_count_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL, node_comm_ = MPI_COMM_NULL, leader_comm_ = MPI_COMM_NULL;
  std::vector<MPI_Comm> owned_comms_;

  // Liveness protocol on its own communicator, so its messages never match gradient traffic.
  struct Pong {
    int64_t waits_entered;
    int32_t waiting;
    int32_t waiting_ms;  // how long this rank has been waiting (0 when it is not)
    char busy[48];       // what a BusyScope says this rank is doing; empty outside one
  };
  MPI_Comm ping_comm_ = MPI_COMM_NULL;
  std::mutex ping_mutex_;
  MPI_Request ping_request_ = MPI_REQUEST_NULL;
  int32_t ping_in_ = 0;
  std::vector<Pong> pong_out_;  // one per peer, alive while its send is in flight
  std::vector<MPI_Request> pong_requests_;
  std::atomic<int64_t> waits_entered_{0};
  std::atomic<int32_t> waiting_{0};
  std::atomic<int64_t> wait_started_ns_{0};  // steady clock, when waiting_ last went from 0 to 1
  std::string busy_;                         // guarded by ping_mutex_
};

// The last call of main(): if a Context started MPI, finalises it after a success (or a halt all ranks
// agreed on, exit code 3); after a failure (exit code 1 or 2) in a multi-rank job it calls MPI_Abort, so
// that ranks blocked on this one end now rather than at their timeout. Returns exit_code.
int shutdown(int exit_code);
// True when a launcher started this process (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK, PMI_SIZE,
// MPI_LOCALNRANKS or SLURM_STEP_NUM_TASKS > 1 is set).
bool launched_by_mpi();
// The rank the launcher gave this process, readable before MPI starts (OMPI_COMM_WORLD_RANK, PMIX_RANK,
// PMI_RANK or SLURM_PROCID); -1 when no launcher started it.
int launch_rank();
// Turns an MPI error code into a triad::Error naming `what`.
void check_mpi(int rc, const std::string& what);

}  // namespace triad::comm
