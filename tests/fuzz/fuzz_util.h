#pragma once
// Shared by the libFuzzer targets of tests/fuzz (built with -DTRIAD_FUZZ=ON, run by scripts/fuzz).
//
// A target feeds its input to one of triad's parsers of outside input. triad's own clean error (a
// triad::Error, runtime or usage) is a normal outcome; anything else that escapes, a crash, a leak, a hang
// or a sanitizer report, is a finding.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "triad/core/error.h"

namespace triad::fuzz {

// A directory of this process's own under $TMPDIR, removed when the process exits normally.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/triad-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) std::abort();
    static const std::string removed = pattern;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(removed, ignored);
    });
    return pattern;
  }();
  return dir;
}

inline void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) std::abort();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `parse`; triad::Error is the clean way to refuse an input, so it is caught. Everything else
// propagates (an uncaught exception aborts, which libFuzzer reports).
template <typename Fn>
void expect_clean(Fn&& parse) {
  try {
    parse();
  } catch (const triad::Error&) {
  }
}

// triad's warnings (one per malformed input line) go to stdio's stderr; sanitizer and libFuzzer reports
// bypass it. Silencing it keeps a fuzzing log readable and the fuzzer fast.
inline void silence_stdio_stderr() {
  if (std::getenv("TRIAD_FUZZ_VERBOSE")) return;
  if (FILE* null = std::fopen("/dev/null", "w")) stderr = null;
}

}  // namespace triad::fuzz
