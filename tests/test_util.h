#pragma once
// Helpers shared by the tests: scratch directories, fixture paths and running the triad binary.

#include <gmock/gmock.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace triad::testing {

// A fresh directory under the system temp dir, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string fixture(const std::string& name);  // tests/data/<name>

// Built with -fsanitize=address (scripts/sanitize): resident memory includes ASan's shadow and quarantine,
// and loops run several times slower, so a memory bound cannot be checked and a search is run on fewer cases.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

struct CommandResult {
  int exit_code;
  std::string out, err;
};
// Runs `build/triad <args>` through the shell (args are shell words), capturing stdout, stderr and the code.
CommandResult run_triad(const std::string& args);
// The same under `mpirun -np ranks --oversubscribe`.
CommandResult run_triad_mpi(int ranks, const std::string& args);
// Any shell command line.
CommandResult run_command(const std::string& line);

// How gtest shows a result in a failed expectation.
inline void PrintTo(const CommandResult& r, std::ostream* os) {
  *os << "exit code " << r.exit_code << ", stderr: " << r.err;
}

// EXPECT_THAT(run_triad(...), RefusedWith("--steps")): a usage error (exit code 2) whose stderr says `says`.
MATCHER_P(RefusedWith, says, "exits 2 (a usage error) saying \"" + std::string(says) + "\"") {
  return arg.exit_code == 2 && arg.err.find(says) != std::string::npos;
}

void write_text(const std::string& path, const std::string& text);
// One JSON value per line (metrics.jsonl, audit/log.jsonl).
std::vector<nlohmann::json> read_jsonl(const std::string& path);

// The fixture corpus prepared once per test process (vocabulary 400, windows of 64 tokens).
const std::string& fixture_data();
// `train -q` on fixture_data() into `run` with a tiny model (L2 d32, batch 4, 2 threads), then `extra`.
std::string tiny_train_args(const std::string& run, const std::string& extra);

// `triad audit verify RUN` succeeds (the run's audit log, checkpoints and signatures check out).
void expect_audit_verified(const std::string& run);

}  // namespace triad::testing
