#pragma once
// Sizes, durations and names as people read them in progress lines and messages.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace triad {

// "512.0KiB", "3.5MiB", "1.25GiB".
std::string format_bytes(size_t bytes);
// "512MiB", "2GiB", "1.5GB", "800MB", "64KiB", "1048576" (bytes) as a number of bytes; nullopt for anything
// else (no unit that is not one of these, no sign, nothing after the unit). Each flag that takes a size
// names itself in its own error.
std::optional<double> parse_bytes(std::string_view text);
// "1:02:03" or "2:03".
std::string format_duration(double seconds);
// Milliseconds to three figures or the unit: "1352 ms", "87.1 ms", "0.42 ms".
std::string format_ms(double ms);
// "a, b, c, d and 3 more": the first few of `names`, for a message about what is in the way.
std::string some_of(const std::vector<std::string>& names);
// The one of `names` nearest to a misspelt `word`, within two single-character edits (insertions,
// deletions, substitutions), for "did you mean ...?"; empty when none is that near.
std::string nearest_name(std::string_view word, const std::vector<std::string>& names);
// Whether `s` is one or more decimal digits: the number in a file name triad writes (step_N, .tmp-PID).
bool all_digits(std::string_view s);

}  // namespace triad
