#include "triad/cli/options.h"

#include "triad/cli/cli.h"

namespace triad::cli {

void add_flag_for(CLI::App& command, const std::string& name, const OptionField& field,
                  const std::string& help, const std::string& group, Check check,
                  const std::vector<std::string>& choices, const std::string& type_name,
                  const std::string& default_text) {
  CLI::Option* flag = std::visit(
      [&](auto* p) -> CLI::Option* {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, bool>) {
          return command.add_flag("--" + name, *p, help);
        } else {
          CLI::Option* o = command.add_option("--" + name, *p, help);
          // Whole numbers are checked here ("--steps: must be positive, got 0"); real numbers only for being
          // numbers, their range by check_options() ("--lr must be a positive number, got nan").
          if constexpr (std::is_integral_v<T>) {
            if (check == Check::kPositive) o->check(positive());
            if (check == Check::kNonNegative) o->check(non_negative());
          } else if constexpr (std::is_floating_point_v<T>) {
            o->check(number(check == Check::kPositive      ? "POSITIVE"
                            : check == Check::kNonNegative ? "NONNEGATIVE"
                                                           : ""));
          }
          return o;
        }
      },
      field);
  if (!choices.empty()) flag->check(CLI::IsMember(choices));
  if (!type_name.empty()) flag->type_name(type_name);
  if (!default_text.empty()) flag->default_str(default_text);
  if (!group.empty()) flag->group(group);
}

}  // namespace triad::cli
