// The policy grammar (governance/policy.h): the input as a condition (parse_policy_condition) and as a
// policy file (PolicySet::parse); a policy that parses is evaluated on a few metrics records.
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "triad/governance/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = triad::fuzz::as_text(data, size);
  triad::fuzz::expect_clean([&] { (void)triad::parse_policy_condition(text); });
  triad::fuzz::expect_clean([&] {
    triad::PolicySet policy = triad::PolicySet::parse(text, "fuzz.toml");
    (void)policy.describe().dump();
    for (int step = 1; step <= 4; ++step) {
      nlohmann::json record = {{"step", step},
                               {"loss", 4.0 / step},
                               {"grad_norm", step == 3 ? 1e308 : 0.5 * step},
                               {"val_loss", step == 2 ? -0.0 : 3.0},
                               {"lr", 0.0}};
      for (const triad::Decision& d : policy.evaluate(record)) (void)d.values.dump();
    }
  });
  return 0;
}
