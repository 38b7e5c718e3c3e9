// A job that loses a rank, for comm_timeout_test.cc. Run under mpirun -np 2:
//   comm_timeout_helper MODE TIMEOUT_S
// hang-thread / hang-poll: rank 1 stops answering (sleeps) while rank 0 waits in GradSync::finish() with a
// progress thread / with polling; hang-wait: the same around Context::wait(). Rank 0 must fail within about
// TIMEOUT_S with one line naming rank 1. busy-thread / busy-wait: rank 1 works for 3 TIMEOUT_S inside a
// BusyScope; rank 0 must warn and wait, and both finish. exit / kill: rank 1 exits with code 3 / is killed
// by SIGKILL; the launcher must end the job at once. crossed: the ranks start all-reduces on two
// communicators in opposite orders (a deadlock); the job must fail naming the mismatch.

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/core/error.h"

int main(int argc, char** argv) {
  using namespace triad;
  if (argc != 3) {
    fmt::print(
        stderr,
        "usage: comm_timeout_helper hang-thread|hang-poll|hang-wait|busy-thread|busy-wait|exit|kill|crossed "
        "TIMEOUT_S\n");
    return 2;
  }
  std::string mode = argv[1];
  try {
    const double timeout_s = std::atof(argv[2]);
    std::unique_ptr<comm::Context> opened = comm::Context::open({.timeout_s = timeout_s});
    comm::Context& context = *opened;
    const bool busy = mode.rfind("busy-", 0) == 0;
    if (context.rank() == 1 && mode == "exit") _exit(3);
    if (context.rank() == 1 && mode == "kill") raise(SIGKILL);
    auto hang = [&] {
      if (context.rank() != 1) return;
      if (!busy) std::this_thread::sleep_for(std::chrono::seconds(120));
      comm::Context::BusyScope scope(context, "writing a checkpoint");
      std::this_thread::sleep_for(std::chrono::duration<double>(3 * timeout_s));
    };
    std::vector<float> grads(1000, 1.0f);
    if (mode == "crossed") {
      MPI_Comm other;
      MPI_Comm_dup(context.comm(), &other);
      MPI_Comm order[2] = {context.comm(), other};
      if (context.rank() == 1) std::swap(order[0], order[1]);
      for (MPI_Comm comm : order) {
        MPI_Request request;
        MPI_Iallreduce(MPI_IN_PLACE, grads.data(), 1000, MPI_FLOAT, MPI_SUM, comm, &request);
        context.wait(&request, 1, "test all-reduce");
      }
    } else if (mode == "hang-wait" || mode == "busy-wait") {
      hang();
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, grads.data(), 1000, MPI_FLOAT, MPI_SUM, context.comm(), &request);
      context.wait(&request, 1, "test all-reduce");
    } else {
      comm::GradSyncOptions options;
      options.progress = mode == "hang-poll" ? comm::Progress::kPoll : comm::Progress::kThread;
      comm::GradSync sync(context, grads.data(), grads.size(), {comm::GradRange{0, grads.size(), {}}},
                          options);
      hang();  // in the "backward"
      sync.bucket_ready(0);
      sync.finish();
    }
    fmt::print("rank {} finished\n", context.rank());
    return comm::shutdown(0);
  } catch (const Error& e) {
    fmt::print(stderr, "triad: error: {}\n", e.what());
    return comm::shutdown(1);
  }
}
