#pragma once
// Messages for the person at the terminal go to stderr; results (JSON, generated text) go to stdout.

#include <fmt/format.h>

#include <cstdio>

namespace triad {

// --quiet silences info and progress; warnings always print.
void set_quiet(bool quiet);
bool quiet();

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
  if (quiet()) return;
  fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "triad: warning: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace triad
