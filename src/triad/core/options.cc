#include "triad/core/options.h"

#include <fmt/format.h>

#include <cmath>

#include "triad/core/error.h"

namespace triad {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
// C++20 deduces this for aggregates; clang before 17 (the fuzz build's clang-14) needs it spelled out.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

nlohmann::json option_value_json(const OptionField& field) {
  return std::visit([](auto* p) { return nlohmann::json(*p); }, field);
}

std::string option_value_text(const OptionField& field) {
  return std::visit(Overloaded{[](const std::string* p) { return *p; },
                               [](const bool* p) { return std::string(*p ? "true" : "false"); },
                               [](const auto* p) { return fmt::format("{}", *p); }},
                    field);
}

void set_option_from_json(const OptionField& field, const nlohmann::json& value, const std::string& where,
                          const std::string& key) {
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        const bool ok = std::is_same_v<T, std::string> ? value.is_string()
                        : std::is_same_v<T, bool>      ? value.is_boolean()
                        : std::is_same_v<T, double>    ? value.is_number()
                        : std::is_unsigned_v<T>        ? value.is_number_unsigned()
                                                       : value.is_number_integer();
        if (!ok)
          fail("{}: option {} = {} is not a {}", where, key, value.dump(),
               std::is_same_v<T, std::string> ? "string"
               : std::is_same_v<T, bool>      ? "boolean"
               : std::is_same_v<T, double>    ? "number"
                                              : "whole number");
        *p = value.get<T>();
      },
      field);
}

void check_option_value(const OptionField& field, const std::string& name, Check check,
                        const std::vector<std::string>& choices) {
  const std::string text = option_value_text(field);
  if (!choices.empty() && std::find(choices.begin(), choices.end(), text) == choices.end()) {
    fail_usage("--{} must be one of {}, got {}", name, fmt::join(choices, ", "), text);
  }
  if (check == Check::kNone) return;
  const bool is_real = std::holds_alternative<double*>(field);
  const double x = std::visit(Overloaded{[](const std::string*) { return 0.0; },
                                         [](const auto* p) { return static_cast<double>(*p); }},
                              field);
  // Written as !(x > 0) and so on, so that NaN fails too.
  switch (check) {
    case Check::kPositive:
      if (!(x > 0) || !std::isfinite(x))
        fail_usage("--{} must be {}, got {}", name, is_real ? "a positive number" : "positive", text);
      return;
    case Check::kNonNegative:
      if (!(x >= 0) || !std::isfinite(x))
        fail_usage("--{} must be {}, got {}", name, is_real ? "a non-negative number" : "non-negative", text);
      return;
    case Check::kFraction:
      if (!(x >= 0 && x < 1)) fail_usage("--{} must be in [0, 1), got {}", name, text);
      return;
    case Check::kNone:
      return;
  }
}

void fail_resume_mismatch(const std::string& run_dir, const std::string& key, const std::string& run_value,
                          const std::string& command_value) {
  fail_usage(
      "--resume {}: the run was trained with {} = {}, the command asks {} (a checkpoint of another "
      "configuration cannot continue)",
      run_dir, key, run_value, command_value);
}

}  // namespace triad
