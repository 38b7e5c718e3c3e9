#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "triad/core/file_io.h"

namespace triad::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "triad-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string fixture(const std::string& name) {
  return std::string(TRIAD_TEST_DATA) + "/" + name;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

CommandResult run_triad(const std::string& args) {
  return run_command(std::string(TRIAD_BINARY) + " " + args);
}

CommandResult run_triad_mpi(int ranks, const std::string& args) {
  // Tests run as root in CI; Open MPI refuses that without both switches.
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  return run_command(std::string(TRIAD_MPIEXEC) + " -np " + std::to_string(ranks) + " --oversubscribe " +
                     TRIAD_BINARY + " " + args);
}

CommandResult run_command(const std::string& line) {
  TempDir dir;
  std::string command = line + " >" + dir / "out" + " 2>" + dir / "err";
  int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(dir / "out");
  result.err = read_file(dir / "err");
  return result;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::string text = read_file(path);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(nlohmann::json::parse(text.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

const std::string& fixture_data() {
  static TempDir dir;
  static std::string path = [] {
    std::string out = dir / "data";
    auto r = run_triad("prepare -q --input " + fixture("fixture/brown_sample.jsonl") + " " +
                       fixture("fixture/brown_more.jsonl.gz") + " --out " + out +
                       " --vocab-size 400 --val-fraction 0.2 --max-tokens 64 --blocklist off");
    if (r.exit_code != 0) throw std::runtime_error(r.err);
    return out;
  }();
  return path;
}

std::string tiny_train_args(const std::string& run, const std::string& extra) {
  return "train -q --data " + fixture_data() + " --out " + run +
         " --layers 2 --d-model 32 --heads 2 --seq-len 16 --batch 4 --lr 3e-3 --warmup 2 --log-every 0 "
         "--sample-prompt '' --eval-batches 2 --threads 2 " +
         extra;
}

void expect_audit_verified(const std::string& run) {
  auto verified = run_triad("audit verify " + run);
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

}  // namespace triad::testing
