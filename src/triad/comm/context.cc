#include "triad/comm/context.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <thread>

#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace triad::comm {

namespace {

constexpr int kPingTag = 1;
constexpr int kPongTag = 2;

// Open MPI keeps what MPI_Init, communicator creation and MPI_Finalize allocate until the process ends.
// Under LeakSanitizer (scripts/sanitize) allocations this thread makes while one of these lives are not
// leaks. Naming Open MPI's libraries in tests/sanitizers/lsan.supp instead needs ASan's slow unwinder on
// every malloc (Open MPI's frames carry no frame pointers), which tripled the sanitizer stage's time.
struct OpenMpiKeeps {
#if defined(__SANITIZE_ADDRESS__)
  OpenMpiKeeps() {
    __lsan_disable();
  }
  ~OpenMpiKeeps() {
    __lsan_enable();
  }
#else
  OpenMpiKeeps() {}  // user-provided: a guard, not an unused variable
#endif
};

bool env_set(const char* name) {
  const char* value = std::getenv(name);
  return value && *value;
}

}  // namespace

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (env_set(name)) return true;
  }
  const char* slurm_tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  return slurm_tasks && std::atoi(slurm_tasks) > 1;
}

int launch_rank() {
  if (!launched_by_mpi()) return -1;
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (env_set(name)) return std::atoi(std::getenv(name));
  }
  return 0;
}

void check_mpi(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  fail("{}: MPI error: {}", what, std::string(text, length));
}

std::unique_ptr<Context> Context::open(const ContextOptions& options) {
  if (!(options.timeout_s > 0)) fail_usage("--comm-timeout must be positive, not {}", options.timeout_s);
  std::unique_ptr<Context> context(new Context());
  context->options_ = options;
  if (launched_by_mpi()) {
    int started = 0;
    MPI_Initialized(&started);
    if (started) fail("internal: a second communication context in one process");
    context->start_mpi();
  }
  return context;
}

Context::~Context() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!uses_mpi_ || finalized || (std::uncaught_exceptions() > 0 && world_ > 1)) return;
  if (ping_request_ != MPI_REQUEST_NULL) MPI_Cancel(&ping_request_);
  MPI_Wait(&ping_request_, MPI_STATUS_IGNORE);
  MPI_Waitall(static_cast<int>(pong_requests_.size()), pong_requests_.data(), MPI_STATUSES_IGNORE);
  for (MPI_Comm& comm : owned_comms_) MPI_Comm_free(&comm);
}

void Context::start_mpi() {
  // Open MPI defaults measured slow for gradient traffic here (docs/comm.md); a value the user set wins.
  // Its non-blocking collectives (libnbc) pick algorithms that take many rounds for large messages, each
  // waiting for a poll: ring all-reduce and binomial reduce were 2-4x faster. Its TCP transport moves data
  // only inside MPI calls unless it has its own progress thread (which sleeps in epoll): with it one-way
  // latency over TCP fell from 1.2 ms to 0.09 ms, and transfers go on while the backward computes.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
  setenv("OMPI_MCA_coll_libnbc_ireduce_algorithm", "2", 0);
  setenv("OMPI_MCA_btl_tcp_progress_thread", "1", 0);
  int provided = 0;
  OpenMpiKeeps keeps;
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  uses_mpi_ = true;
  thread_multiple_ = provided >= MPI_THREAD_MULTIPLE;
  // Errors come back as codes (turned into one-line triad errors) instead of aborting inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  for (MPI_Comm* comm : {&comm_, &ping_comm_}) {
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, comm), "MPI_Comm_dup");
    owned_comms_.push_back(*comm);
  }
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &world_);
  split_nodes();
  pong_out_.resize(world_);
  pong_requests_.assign(world_, MPI_REQUEST_NULL);
  check_mpi(MPI_Irecv(&ping_in_, 1, MPI_INT32_T, MPI_ANY_SOURCE, kPingTag, ping_comm_, &ping_request_),
            "liveness receive");
}

void Context::split_nodes() {
  MPI_Comm node = MPI_COMM_NULL;
  if (options_.ranks_per_node > 0) {
    check_mpi(MPI_Comm_split(comm_, rank_ / options_.ranks_per_node, rank_, &node), "node split");
  } else {
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "node split");
  }
  owned_comms_.push_back(node);
  node_comm_ = node;
  MPI_Comm_rank(node_comm_, &node_rank_);
  MPI_Comm_size(node_comm_, &node_size_);
  MPI_Comm leaders = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(comm_, node_rank_ == 0 ? 0 : MPI_UNDEFINED, rank_, &leaders), "leader split");
  int where[2] = {0, 0};  // this node's index among the nodes, and how many nodes there are
  if (leaders != MPI_COMM_NULL) {
    owned_comms_.push_back(leaders);
    leader_comm_ = leaders;
    MPI_Comm_rank(leader_comm_, &where[0]);
    MPI_Comm_size(leader_comm_, &where[1]);
  }
  check_mpi(MPI_Bcast(where, 2, MPI_INT, 0, node_comm_), "node index broadcast");
  node_index_ = where[0];
  node_count_ = where[1];
  int host_ranks = node_size_;
  if (options_.ranks_per_node > 0) {  // the nodes above are made up: count the host's ranks
    MPI_Comm host = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &host), "host split");
    MPI_Comm_size(host, &host_ranks);
    MPI_Comm_free(&host);
  }
  ranks_share_cores_ = host_ranks > static_cast<int>(std::thread::hardware_concurrency());
}

std::unique_ptr<Context> Context::split(int color, int key, const std::string& what) {
  std::unique_ptr<Context> child(new Context());
  child->options_ = options_;
  child->parent_ = &root();
  if (!uses_mpi_) return color < 0 ? nullptr : std::move(child);
  MPI_Comm comm = MPI_COMM_NULL;
  OpenMpiKeeps keeps;
  check_mpi(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &comm), what);
  if (comm == MPI_COMM_NULL) return nullptr;
  child->uses_mpi_ = true;
  child->thread_multiple_ = thread_multiple_;
  child->comm_ = comm;
  child->owned_comms_.push_back(comm);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm, &child->rank_);
  MPI_Comm_size(comm, &child->world_);
  child->split_nodes();
  return child;
}

MPI_Comm Context::dup_comm(MPI_Comm comm) {
  MPI_Comm copy = MPI_COMM_NULL;
  MPI_Request request;
  check_mpi(MPI_Comm_idup(comm, &copy, &request), "MPI_Comm_idup");
  wait(&request, 1, "communicator setup");
  owned_comms_.push_back(copy);
  return copy;
}

Context::WaitScope::WaitScope(Context& context) : context_(context.root()) {
  context_.waits_entered_++;
  if (context_.waiting_++ == 0) {
    context_.wait_started_ns_ =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  }
}

Context::WaitScope::~WaitScope() {
  context_.waiting_--;
}

void Context::wait(MPI_Request* requests, int count, const std::string& what) {
  if (count == 0) return;
  Context& live = root();
  WaitScope scope(live);
  Clock::time_point start = Clock::now(), deadline_start = start;
  for (int spins = 0;; ++spins) {
    int done = 0;
    check_mpi(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE), what);
    if (done) return;
    live.serve_pings();
    if (seconds_since(deadline_start) > options_.timeout_s) {
      live.on_timeout(what, seconds_since(start), [&] {
        check_mpi(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE), what);
        return done != 0;
      });
      deadline_start = Clock::now();
    }
    live.pause_in_wait(spins, start);
  }
}

void Context::pause_in_wait(int spins, Clock::time_point started) {
  if (spins <= 1000) return;
  if (root().ranks_share_cores_ && seconds_since(started) > 1e-3) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  } else {
    std::this_thread::yield();
  }
}

void Context::serve_pings() {
  if (parent_) return root().serve_pings();
  if (!uses_mpi_ || ping_request_ == MPI_REQUEST_NULL) return;
  std::unique_lock<std::mutex> lock(ping_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  for (;;) {
    int arrived = 0;
    MPI_Status status;
    if (MPI_Test(&ping_request_, &arrived, &status) != MPI_SUCCESS || !arrived) return;
    int peer = status.MPI_SOURCE;
    int previous_done = 1;
    MPI_Test(&pong_requests_[peer], &previous_done, MPI_STATUS_IGNORE);
    if (previous_done) {
      const int32_t waiting = waiting_.load();
      const double waited_s =
          waiting ? seconds_since(Clock::time_point(std::chrono::nanoseconds(wait_started_ns_.load()))) : 0;
      pong_out_[peer] = Pong{waits_entered_.load(), waiting, static_cast<int32_t>(waited_s * 1e3), {}};
      std::strncpy(pong_out_[peer].busy, busy_.c_str(), sizeof(Pong::busy) - 1);
      MPI_Isend(&pong_out_[peer], sizeof(Pong), MPI_BYTE, peer, kPongTag, ping_comm_, &pong_requests_[peer]);
    }
    MPI_Irecv(&ping_in_, 1, MPI_INT32_T, MPI_ANY_SOURCE, kPingTag, ping_comm_, &ping_request_);
  }
}

Context::BusyScope::BusyScope(Context& context, const std::string& what) : context_(context.root()) {
  if (!context_.uses_mpi_ || context_.world_ == 1 || !context_.thread_multiple_) return;
  {
    std::lock_guard<std::mutex> lock(context_.ping_mutex_);
    context_.busy_ = what;
  }
  thread_ = std::thread([this] {
    while (!stop_) {
      context_.serve_pings();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

Context::BusyScope::~BusyScope() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  std::lock_guard<std::mutex> lock(context_.ping_mutex_);
  context_.busy_.clear();
}

void Context::on_timeout(const std::string& what, double waited_s, const std::function<bool()>& finished) {
  if (parent_) return root().on_timeout(what, waited_s, finished);
  std::string limit = fmt::format("within {:g} s (--comm-timeout)", options_.timeout_s);
  if (!uses_mpi_ || world_ == 1) fail("{}: not finished {}", what, limit);

  // Ask every peer; answers arrive from ranks that wait in communication too (they call serve_pings()).
  int32_t question = rank_;
  std::vector<Pong> answers(world_);
  std::vector<MPI_Request> asks(world_, MPI_REQUEST_NULL), replies(world_, MPI_REQUEST_NULL);
  for (int peer = 0; peer < world_; ++peer) {
    if (peer == rank_) continue;
    MPI_Isend(&question, 1, MPI_INT32_T, peer, kPingTag, ping_comm_, &asks[peer]);
    MPI_Irecv(&answers[peer], sizeof(Pong), MPI_BYTE, peer, kPongTag, ping_comm_, &replies[peer]);
  }
  double grace_s = std::clamp(options_.timeout_s / 10, 1.0, 10.0);
  std::vector<bool> answered(world_, false);
  answered[rank_] = true;
  Clock::time_point start = Clock::now();
  while (seconds_since(start) < grace_s &&
         !std::all_of(answered.begin(), answered.end(), [](bool a) { return a; })) {
    serve_pings();
    for (int peer = 0; peer < world_; ++peer) {
      int done = 0;
      if (!answered[peer]) MPI_Test(&replies[peer], &done, MPI_STATUS_IGNORE);
      if (done) answered[peer] = true;
    }
    if (finished()) {
      // Our operation completed while we asked. The questions and their answers live on this frame: take
      // back the receives nobody answered (cancelled, or completed if an answer came after all) and let
      // the small eager sends complete.
      for (int peer = 0; peer < world_; ++peer) {
        if (answered[peer]) continue;
        MPI_Cancel(&replies[peer]);
        MPI_Wait(&replies[peer], MPI_STATUS_IGNORE);
      }
      MPI_Waitall(world_, asks.data(), MPI_STATUSES_IGNORE);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  // The requests to silent peers stay posted: the job is about to be aborted.
  std::vector<int> silent, behind, busy;
  for (int peer = 0; peer < world_; ++peer) {
    if (!answered[peer]) {
      silent.push_back(peer);
    } else if (peer != rank_ && (!answers[peer].waiting || answers[peer].waits_entered < waits_entered_)) {
      (answers[peer].busy[0] ? busy : behind).push_back(peer);
    }
  }
  auto ranks = [](const std::vector<int>& list) {
    return fmt::format("rank{} {}", list.size() > 1 ? "s" : "", fmt::join(list, ", "));
  };
  if (!silent.empty()) {
    fail("{}: no answer from {} of {} {}: dead, hung or unreachable", what, ranks(silent), world_, limit);
  }
  if (!behind.empty()) {
    fail("{}: {} {} alive but did not reach this point {} (waited {:.1f} s)", what, ranks(behind),
         behind.size() > 1 ? "are" : "is", limit, waited_s);
  }
  if (!busy.empty()) {
    // Every peer answered, so each has our question: the sends are complete (and `question` may go).
    MPI_Waitall(world_, asks.data(), MPI_STATUSES_IGNORE);
    const Pong& first = answers[busy.front()];
    log_warn("rank {}: {}: still waiting after {:.0f} s: {} busy ({}{})", rank_, what, waited_s, ranks(busy),
             std::string(first.busy, strnlen(first.busy, sizeof(Pong::busy))), busy.size() > 1 ? ", …" : "");
    return;
  }
  // A peer that has only just begun to wait may be about to complete the collective with us: look again
  // after another timeout before calling it a mismatch.
  for (int peer = 0; peer < world_; ++peer) {
    if (peer != rank_ && answers[peer].waiting_ms < options_.timeout_s * 1e3) {
      MPI_Waitall(world_, asks.data(), MPI_STATUSES_IGNORE);
      return;
    }
  }
  fail(
      "{}: not finished {} though all {} ranks answer and wait: the ranks called collectives in different "
      "orders",
      what, limit, world_);
}

int shutdown(int exit_code) {
  int started = 0, finalized = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finalized);
  if (!started || finalized) return exit_code;
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  // Exit codes 1 and 2 are one rank's failure; others (3: a halt every rank agreed on) end cleanly.
  if ((exit_code == 1 || exit_code == 2) && world > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  OpenMpiKeeps keeps;
  MPI_Finalize();
  return exit_code;
}

}  // namespace triad::comm
