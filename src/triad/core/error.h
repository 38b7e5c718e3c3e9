#pragma once
// Errors. Every failure a user can cause is a triad::Error carrying a one-line message that names the file,
// line or field at fault and what was expected. The CLI prints it as "triad: error: <message>" and exits with
// the kind's code; nothing below the CLI prints or exits.

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace triad {

enum class ErrorKind {
  kRuntime = 1,  // the work failed: bad data, I/O, numerics
  kUsage = 2,    // the command line or config is wrong; nothing was started
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(ErrorKind::kRuntime, fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail_usage(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(ErrorKind::kUsage, fmt::format(format, std::forward<Args>(args)...));
}

// The text of errno, for messages about system calls.
std::string errno_text();

}  // namespace triad
