#pragma once
// Command line of the MPI benches: "--name value" pairs. --help prints the usage; an unknown flag, a flag
// without a value, or a run outside mpirun (the benches time messages between ranks, and plain MPI calls
// abort without a launcher) is a usage error with exit code 2.

#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <string>

#include "triad/comm/context.h"

namespace triad::bench {

class BenchFlags {
 public:
  // `defaults`: every flag the bench takes, with its default value.
  BenchFlags(int argc, char** argv, const char* usage, std::map<std::string, std::string> defaults)
      : values_(std::move(defaults)) {
    for (int i = 1; i < argc; i += 2) {
      std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") {
        fmt::print("{}", usage);
        std::exit(0);
      }
      if (flag.rfind("--", 0) != 0 || !values_.count(flag.substr(2))) refuse(usage, "unknown flag " + flag);
      if (i + 1 >= argc) refuse(usage, flag + " needs a value");
      values_[flag.substr(2)] = argv[i + 1];
    }
  }

  const std::string& text(const std::string& name) const { return values_.at(name); }
  double number(const std::string& name) const { return std::atof(text(name).c_str()); }
  int integer(const std::string& name) const { return std::atoi(text(name).c_str()); }

  // Call after comm::init.
  static void require_mpirun(const comm::Context& context, const char* usage) {
    if (!context.uses_mpi()) refuse(usage, "run it under mpirun (it times messages between ranks)");
  }

 private:
  [[noreturn]] static void refuse(const char* usage, const std::string& why) {
    fmt::print(stderr, "error: {}\n\n{}", why, usage);
    std::exit(2);
  }

  std::map<std::string, std::string> values_;
};

}  // namespace triad::bench
