// Jobs under mpirun, checked from outside: a rank that hangs or dies must end the job quickly with a
// message naming it; `triad probe` writes a topology of the right shape.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "triad/core/file_io.h"

namespace triad {
namespace {

using testing::TempDir;

struct JobResult {
  int exit_code;
  std::string output;  // stdout and stderr of every rank and of mpirun
  double seconds;
};

JobResult mpirun(int ranks, const std::string& command) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  TempDir dir;
  std::string line = std::string(TRIAD_MPIEXEC) + " -np " + std::to_string(ranks) + " --oversubscribe " +
                     command + " >" + dir / "out" + " 2>&1";
  auto start = std::chrono::steady_clock::now();
  int status = std::system(line.c_str());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(dir / "out"), seconds};
}

TEST(CommTimeout, AHungRankIsNamedWithinTheTimeout) {
  for (const char* mode : {"hang-thread", "hang-poll", "hang-wait"}) {
    JobResult job = mpirun(2, std::string(TRIAD_TIMEOUT_HELPER) + " " + mode + " 2");
    EXPECT_NE(job.exit_code, 0) << mode << "\n" << job.output;
    // 2 s timeout, at most 1 s asking who is alive, then MPI_Abort: far from the sleeper's 120 s.
    EXPECT_LT(job.seconds, 20) << mode;
    EXPECT_NE(job.output.find("triad: error: "), std::string::npos) << mode << "\n" << job.output;
    std::string what = std::string(mode) == "hang-wait" ? "test all-reduce" : "gradient sync of step 0";
    EXPECT_NE(job.output.find("triad: error: " + what), std::string::npos) << mode << "\n" << job.output;
    EXPECT_NE(job.output.find("no answer from rank 1 of 2 within 2 s (--comm-timeout)"), std::string::npos)
        << mode << "\n"
        << job.output;
    EXPECT_EQ(job.output.find("finished"), std::string::npos) << mode << "\n" << job.output;
  }
}

// Rank 0 writing a long checkpoint is not a hang: a rank that waits on it past the timeout warns and waits.
TEST(CommTimeout, ABusyRankIsWaitedForWithAWarning) {
  for (const char* mode : {"busy-thread", "busy-wait"}) {
    JobResult job = mpirun(2, std::string(TRIAD_TIMEOUT_HELPER) + " " + mode + " 1");
    EXPECT_EQ(job.exit_code, 0) << mode << "\n" << job.output;
    EXPECT_NE(job.output.find("rank 0 finished"), std::string::npos) << mode << "\n" << job.output;
    EXPECT_NE(job.output.find("rank 1 finished"), std::string::npos) << mode << "\n" << job.output;
    EXPECT_NE(job.output.find("triad: warning: rank 0: "), std::string::npos) << mode << "\n" << job.output;
    EXPECT_NE(job.output.find("rank 1 busy (writing a checkpoint)"), std::string::npos) << mode << "\n"
                                                                                        << job.output;
  }
}

// Both ranks wait, each in a different collective: not a late rank (one that has only just begun to wait is
// given another timeout) but a mismatch, named within a few timeouts.
TEST(CommTimeout, CollectivesInDifferentOrdersAreNamed) {
  JobResult job = mpirun(2, std::string(TRIAD_TIMEOUT_HELPER) + " crossed 1");
  EXPECT_NE(job.exit_code, 0) << job.output;
  EXPECT_LT(job.seconds, 20) << job.output;
  EXPECT_NE(job.output.find("test all-reduce: not finished within 1 s (--comm-timeout) though all 2 ranks "
                            "answer and wait: the ranks called collectives in different orders"),
            std::string::npos)
      << job.output;
  EXPECT_EQ(job.output.find("finished\n"), std::string::npos) << job.output;
}

TEST(CommTimeout, ADeadRankEndsTheJobAtOnce) {
  // The launcher notices a death and names the rank; nobody waits for the 60 s timeout.
  JobResult killed = mpirun(2, std::string(TRIAD_TIMEOUT_HELPER) + " kill 60");
  EXPECT_NE(killed.exit_code, 0) << killed.output;
  EXPECT_LT(killed.seconds, 20) << killed.output;
  EXPECT_NE(killed.output.find("rank 1"), std::string::npos) << killed.output;
  JobResult failed = mpirun(2, std::string(TRIAD_TIMEOUT_HELPER) + " exit 60");
  EXPECT_NE(failed.exit_code, 0) << failed.output;
  EXPECT_LT(failed.seconds, 20) << failed.output;
}

TEST(CommProbe, WritesTheTopologyAndPredictions) {
  TempDir dir;
  JobResult job =
      mpirun(2, std::string(TRIAD_BINARY) + " probe --out " + dir / "topology.json" +
                    " --bandwidth-mb 0.25 --messages 2 --round-trips 20 --gemm-size 64 --bucket-mb 1");
  ASSERT_EQ(job.exit_code, 0) << job.output;
  nlohmann::json topology = nlohmann::json::parse(read_file(dir / "topology.json"));
  EXPECT_EQ(topology["format"], "triad-topology/1");
  ASSERT_EQ(topology["world"], 2);
  ASSERT_EQ(topology["ranks"].size(), 2u);
  for (const auto& rank : topology["ranks"]) {
    EXPECT_FALSE(rank["host"].get<std::string>().empty());
    EXPECT_EQ(rank["node"], 0);
    EXPECT_GT(rank["sgemm_gflops"].get<double>(), 0);
    for (const char* codec : {"fp16", "int8", "topk", "powersgd"})
      EXPECT_GT(rank["codec_ns_per_float"][codec].get<double>(), 0);
    // The CPUs the rank may run on (mpirun may bind it to one): at least one, each a CPU of this machine.
    ASSERT_FALSE(rank["cpus"].empty()) << rank.dump();
    for (const auto& cpu : rank["cpus"]) EXPECT_LT(cpu.get<long>(), sysconf(_SC_NPROCESSORS_CONF));
  }
  for (const char* key : {"latency_us", "bandwidth_MBps"}) {
    ASSERT_EQ(topology[key].size(), 2u) << key;
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(topology[key][i].size(), 2u) << key;
      for (int j = 0; j < 2; ++j) {
        double v = topology[key][i][j].get<double>();
        EXPECT_EQ(v > 0, i != j) << key << "[" << i << "][" << j << "] = " << v;
      }
    }
  }
  // The summary on stdout carries the cost model's predictions for the requested bucket.
  size_t brace = job.output.find("{\"max_latency_us\"");
  ASSERT_NE(brace, std::string::npos) << job.output;
  nlohmann::json summary =
      nlohmann::json::parse(job.output.substr(brace, job.output.find('\n', brace) - brace));
  ASSERT_EQ(summary["predictions"].size(), 1u);
  EXPECT_EQ(summary["predictions"][0]["bucket_mb"], 1.0);
  EXPECT_EQ(summary["predictions"][0]["predicted_ms"].size(), 5u);  // none + 4 codecs

  // Given a model and a batch, the probe also times it alone and at once, and the planner prices that.
  job = mpirun(2, std::string(TRIAD_BINARY) + " probe --out " + dir / "timed.json" +
                      " --bandwidth-mb 0.25 --messages 2 --round-trips 20 --gemm-size 64 --bucket-mb 1 "
                      "--layers 2 --d-model 32 --heads 2 --seq-len 16 --vocab 400 --batch 4");
  ASSERT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("all at once"), std::string::npos) << job.output;
  nlohmann::json timed = nlohmann::json::parse(read_file(dir / "timed.json"));
  EXPECT_EQ(timed["micro_step_of"]["micro_batch"], 2);
  EXPECT_EQ(timed["micro_step_of"]["model"]["d_model"], 32);
  for (const auto& rank : timed["ranks"]) {
    EXPECT_GT(rank["micro_step_alone_ms"].get<double>(), 0) << rank.dump();
    EXPECT_GT(rank["micro_step_at_once_ms"].get<double>(), 0) << rank.dump();
  }
  EXPECT_EQ(timed["ranks"][0]["micro_step_alone_ms"], timed["ranks"][1]["micro_step_alone_ms"]);  // one node
  const std::string plan =
      "plan --layers 2 --d-model 32 --heads 2 --seq-len 16 --vocab 400 --batch 4 --ranks 2 "
      "--memory-per-rank 1GiB --json --topology ";
  testing::CommandResult planned = testing::run_triad(plan + dir / "timed.json");
  ASSERT_EQ(planned.exit_code, 0) << planned.err;
  EXPECT_EQ(nlohmann::json::parse(planned.out)["at_once"].size(), 1u) << planned.out;
  planned = testing::run_triad(
      "plan --layers 2 --d-model 64 --heads 2 --seq-len 16 --vocab 400 --batch 4 --ranks 2 "
      "--memory-per-rank 1GiB --json --topology " +
      dir / "timed.json");
  ASSERT_EQ(planned.exit_code, 0) << planned.err;  // another model: a warning, no price
  EXPECT_TRUE(nlohmann::json::parse(planned.out)["at_once"].empty()) << planned.out;
  EXPECT_NE(planned.err.find("another model"), std::string::npos) << planned.err;

  // Predictions from the file alone need no MPI.
  testing::CommandResult predicted =
      testing::run_triad("probe --predict " + dir / "topology.json" + " --bucket-mb 2");
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  EXPECT_EQ(nlohmann::json::parse(predicted.out)["predictions"][0]["bucket_mb"], 2.0);
}

TEST(CommProbe, HelpShowsDefaultsAndBadFilesAreNamed) {
  testing::CommandResult help = testing::run_triad("probe --help");
  ASSERT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--comm-timeout"), std::string::npos);
  EXPECT_NE(help.out.find("300"), std::string::npos);
  EXPECT_NE(help.out.find("topology.json"), std::string::npos);
  TempDir dir;
  testing::write_text(dir / "bad.json",
                      R"({"format": "triad-topology/1", "world": 1, "ranks": [{"node": 0}]})");
  testing::CommandResult bad = testing::run_triad("probe --predict " + dir / "bad.json");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.json: field 'ranks[0].sgemm_gflops' must be a number >= 0"), std::string::npos)
      << bad.err;
}

}  // namespace
}  // namespace triad
