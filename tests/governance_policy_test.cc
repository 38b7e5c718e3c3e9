// The policy engine: its grammar, its errors (file, line, rule, column), the metrics a rule may read and each
// action firing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/governance/policy.h"

namespace triad {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string parse_error(const std::string& when) {
  try {
    parse_policy_condition(when);
  } catch (const Error& e) {
    return e.what();
  }
  return "parsed";
}

std::string load_error(const std::string& toml,
                       const std::map<std::string, std::string>* known_metrics = nullptr) {
  try {
    PolicySet::parse(toml, "policy.toml", known_metrics);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    return e.what();
  }
  return "loaded";
}

PolicySet one_rule(const std::string& when, const std::string& action = "alert") {
  return PolicySet::parse("[[rule]]\nname = \"r\"\nwhen = \"" + when + "\"\naction = \"" + action + "\"\n",
                          "p.toml");
}

// Feeds records and returns the indices of those on which the single rule fired.
std::vector<int> fires(PolicySet& set, const std::vector<nlohmann::json>& records) {
  std::vector<int> out;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!set.evaluate(records[i]).empty()) out.push_back(static_cast<int>(i));
  }
  return out;
}

TEST(GovernancePolicy, TheGrammarParsesWhatTheDocsShow) {
  for (const char* ok :
       {"grad_norm > 100 for 3 steps", "val_loss > 1.2 * best(val_loss)", "dp_epsilon > 8",
        "loss > 2 and not (lr < 1e-5 or step <= 100)", "abs(loss - prev(loss)) / prev(loss) >= .5",
        "mean(loss, 10) > max(loss) - -1", "x == 1 or x != 2", "-x < 3 for 1 step",
        "min(val_loss, 3) > best(val_loss) for 2 evals"}) {
    EXPECT_EQ(parse_error(ok), "parsed") << ok;
  }
  PolicyCondition c = parse_policy_condition("val_loss > 1.2 * best(val_loss) and lr > 0 for 4 times");
  EXPECT_EQ(c.for_count, 4u);
  EXPECT_THAT(c.metrics, ElementsAre("lr", "val_loss"));
}

TEST(GovernancePolicy, ParseErrorsNameTheColumn) {
  EXPECT_EQ(parse_error("grad_norm > "),
            "column 13: expected a number, a metric, a function or '(', found the end");
  EXPECT_EQ(parse_error("loss = 3"), "column 6: '=' is not an operator (use '==' to compare)");
  EXPECT_EQ(parse_error("loss > 1 && x > 2"), "column 10: use the words and, or, not");
  EXPECT_EQ(parse_error("(loss > 1"), "column 10: expected ')' to close the '(', found the end");
  EXPECT_EQ(parse_error("loss > 1 > 2"), "column 10: comparisons do not chain; join them with 'and'");
  EXPECT_EQ(parse_error("loss + 1"), "column 1: the condition is a number; compare it, e.g. '... > 100'");
  EXPECT_EQ(parse_error("loss > 1 and 3"), "column 10: 'and' needs conditions (comparisons) on both sides");
  EXPECT_EQ(parse_error("(a > 1) + 2 > 0"), "column 9: '+' needs numbers on both sides");
  EXPECT_EQ(parse_error("not loss"), "column 1: 'not' needs a condition (a comparison)");
  EXPECT_EQ(parse_error("median(loss) > 1"),
            "column 1: unknown function 'median' (known: abs, best, max, mean, min, prev)");
  EXPECT_EQ(parse_error("best(2) > 1"), "column 6: best() takes a metric name, found '2'");
  EXPECT_EQ(parse_error("mean(loss, 0) > 1"),
            "column 12: the window of mean() must be a whole number of values (1 or more)");
  EXPECT_EQ(parse_error("prev(loss, 2) > 1"), "column 10: expected ')' after the metric, found ','");
  EXPECT_EQ(parse_error("loss > 1 for 0 steps"),
            "column 14: 'for' needs a whole number of steps (1 or more), found '0'");
  EXPECT_EQ(parse_error("loss > 1 for 2.5 steps"),
            "column 14: 'for' needs a whole number of steps (1 or more), found '2.5'");
  EXPECT_EQ(parse_error("loss > 1 for 3 hours"),
            "column 16: expected 'steps' (or evals, times) after 'for 3', found 'hours'");
  EXPECT_EQ(parse_error("loss > 1 loss"),
            "column 10: expected an operator, 'and', 'or', 'for' or the end, found 'loss'");
  EXPECT_EQ(parse_error("loss > 1e"), "column 8: malformed number");
  EXPECT_EQ(parse_error("loss > 1; rm -rf /"), "column 9: unexpected character ';'");
  EXPECT_EQ(parse_error("  "), "column 1: the condition is empty");
}

// tests/fuzz/corpus/policy/deep_nesting.txt: 1811 characters of '(' and '-' overflowed the recursive
// descent's stack (100,000 of them do so without a sanitizer too).
TEST(GovernancePolicy, NestingAndLengthAreBounded) {
  for (const std::string& deep :
       {std::string(100000, '(') + "x" + std::string(100000, ')') + " > 1",
        std::string(100000, '-') + "x > 1", "x > " + std::string(100000, '-') + "1", [] {
          std::string s;
          for (int i = 0; i < 50000; ++i) s += "not ";
          return s + "x > 1";
        }()}) {
    EXPECT_THAT(parse_error(deep.substr(0, 4000)), HasSubstr("nested more than 64 deep"));
    EXPECT_THAT(parse_error(deep), HasSubstr("characters long; at most 4096"));
  }
  std::string sum = "x";
  for (int i = 0; i < 1000; ++i) sum += " + x";
  EXPECT_NO_THROW(parse_policy_condition(sum + " > 1"));  // 4004 characters, a tree 1000 deep
  std::string nested = std::string(64, '(') + "x" + std::string(64, ')') + " > 1";
  EXPECT_NO_THROW(parse_policy_condition(nested));
  EXPECT_THAT(parse_error("(" + nested + ")"), HasSubstr("column 65: nested more than 64 deep"));
}

TEST(GovernancePolicy, FileErrorsNameFileLineRuleAndColumn) {
  EXPECT_EQ(load_error("[[rule]]\nname = \"spike\"\nwhen = \"loss >\"\naction = \"halt\"\n"),
            "policy.toml:3: rule 'spike': when, column 7: expected a number, a metric, a function or '(', "
            "found the end");
  EXPECT_EQ(load_error("[[rule]]\nname = \"spike\"\nwhen = \"loss > 1\"\naction = \"stop\"\n"),
            "policy.toml:4: rule 'spike': action 'stop' is not alert, halt or review");
  EXPECT_EQ(load_error("[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\naction = \"alert\"\nseverity = \"high\"\n"),
            "policy.toml:5: unknown key 'severity' in a rule (known: name, when, action, message)");
  EXPECT_EQ(load_error("[[rule]]\nwhen = \"x > 1\"\naction = \"alert\"\n"),
            "policy.toml:1: a rule needs a name");
  EXPECT_EQ(load_error("[[rule]]\nname = \"a\"\naction = \"alert\"\n"),
            "policy.toml:1: rule 'a' needs when = \"condition\"");
  EXPECT_EQ(load_error("[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\naction = \"alert\"\n[[rule]]\nname = "
                       "\"a\"\nwhen = \"x > "
                       "2\"\naction = \"halt\"\n"),
            "policy.toml:5: rule 'a' is defined twice");
  EXPECT_EQ(load_error("rules = 1\n"),
            "policy.toml:1: unknown key 'rules' (a policy file holds [[rule]] tables)");
  EXPECT_EQ(load_error(""), "policy.toml: no rules (add [[rule]] tables with name, when and action)");
  EXPECT_THAT(load_error("[[rule]\n"), HasSubstr("policy.toml:1:"));
  EXPECT_EQ(load_error("[[rule]]\nname = 3\n"), "policy.toml:2: 'name' must be a string");

  testing::TempDir dir;
  try {
    PolicySet::load(dir / "absent.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("absent.toml: no such file"));
  }
}

TEST(GovernancePolicy, GivenTheRunsMetricsARuleMayReadNoOther) {
  const std::map<std::string, std::string> known = {{"grad_norm", "the gradient's global norm"},
                                                    {"loss", "the training loss"},
                                                    {"val_loss", "the validation loss"}};
  auto rule = [](const std::string& when) {
    return "[[rule]]\nname = \"spike\"\naction = \"alert\"\nwhen = \"" + when + "\"\n";
  };
  EXPECT_EQ(load_error(rule("grad_norm > 10 and val_loss > 1.2 * best(val_loss)"), &known), "loaded");
  EXPECT_EQ(load_error(rule("grad_nrom > 10"), &known),
            "policy.toml:4: rule 'spike': when reads 'grad_nrom', a metric this run never reports; did you "
            "mean grad_norm? (known metrics: grad_norm, loss, val_loss)");
  EXPECT_EQ(load_error(rule("loss > 1.5 * mean(perplexity)"), &known),
            "policy.toml:4: rule 'spike': when reads 'perplexity', a metric this run never reports (known "
            "metrics: grad_norm, loss, val_loss)");
  const std::map<std::string, std::string> none;
  EXPECT_EQ(load_error(rule("loss > 1"), &none),
            "policy.toml:4: rule 'spike': when reads 'loss', a metric this run never reports (known metrics: "
            "none)");
  // Without the list any name goes: the rule is merely unknown until the metric appears.
  EXPECT_EQ(load_error(rule("grad_nrom > 10")), "loaded");

  testing::TempDir dir;
  testing::write_text(dir / "p.toml", rule("val_los > 3"));
  try {
    PolicySet::load(dir / "p.toml", &known);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), HasSubstr("p.toml:4: rule 'spike': when reads 'val_los'"));
    EXPECT_THAT(e.what(), HasSubstr("did you mean val_loss?"));
  }
  EXPECT_EQ(PolicySet::load(dir / "p.toml").rules().size(), 1u);
}

TEST(GovernancePolicy, AlertFiresAfterNConsecutiveStepsOncePerEpisode) {
  PolicySet set = one_rule("grad_norm > 100 for 3 steps");
  std::vector<nlohmann::json> records;
  for (double g : {150, 150, 50, 150, 150, 150, 150, 150, 20, 120, 130, 140})
    records.push_back({{"grad_norm", g}});
  records.insert(records.begin() + 5,
                 nlohmann::json{{"val_loss", 3.0}});  // an eval record neither counts nor resets
  EXPECT_THAT(fires(set, records), ElementsAre(6, 12));

  PolicySet again = one_rule("grad_norm > 100 for 3 steps");
  std::vector<Decision> d;
  for (int step = 1; step <= 3; ++step) d = again.evaluate({{"step", step}, {"grad_norm", 100.0 + step}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].rule, "r");
  EXPECT_EQ(d[0].action, PolicyAction::kAlert);
  EXPECT_EQ(d[0].step, 3);
  EXPECT_EQ(d[0].values["grad_norm"], 103.0);
  EXPECT_EQ(d[0].message, "policy rule 'r' (grad_norm > 100 for 3 steps) fired at step 3: grad_norm=103");
}

TEST(GovernancePolicy, HaltWhenValidationLossRisesAboveItsBest) {
  PolicySet set = PolicySet::parse(
      "[[rule]]\nname = \"diverging\"\nwhen = \"val_loss > 1.2 * best(val_loss)\"\naction = \"halt\"\n"
      "message = \"validation loss diverged\"\n",
      "p.toml");
  EXPECT_TRUE(set.evaluate({{"step", 100}, {"val_loss", 3.0}}).empty());  // no history yet: unknown
  EXPECT_TRUE(set.evaluate({{"step", 200}, {"val_loss", 2.0}}).empty());
  EXPECT_TRUE(set.evaluate({{"step", 250}, {"loss", 9.0}}).empty());      // reads no val_loss
  EXPECT_TRUE(set.evaluate({{"step", 300}, {"val_loss", 2.4}}).empty());  // 2.4 = 1.2 * 2.0, not above
  std::vector<Decision> d = set.evaluate({{"step", 400}, {"val_loss", 2.5}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].action, PolicyAction::kHalt);
  EXPECT_EQ(d[0].message, "policy rule 'diverging': validation loss diverged");
  EXPECT_EQ(d[0].step, 400);
}

TEST(GovernancePolicy, ReviewWhenThePrivacyBudgetIsSpent) {
  PolicySet set = one_rule("dp_epsilon > 8", "review");
  EXPECT_THAT(
      fires(set,
            {{{"dp_epsilon", 7.5}}, {{"dp_epsilon", 8.0}}, {{"dp_epsilon", 8.1}}, {{"dp_epsilon", 9.0}}}),
      ElementsAre(2));
  EXPECT_EQ(set.evaluate({{"dp_epsilon", 1.0}}).size(), 0u);
  EXPECT_EQ(set.evaluate({{"dp_epsilon", 9.0}})[0].action, PolicyAction::kReview);
  EXPECT_EQ(policy_action_name(PolicyAction::kReview), "review");
}

TEST(GovernancePolicy, HistoryFunctionsArithmeticAndThreeValuedLogic) {
  PolicySet window = one_rule("mean(loss, 2) > 5");
  EXPECT_THAT(fires(window, {{{"loss", 1}}, {{"loss", 9}}, {{"loss", 9}}, {{"loss", 1}}}), ElementsAre(3));
  PolicySet jump = one_rule("abs(loss - prev(loss)) > 1");
  EXPECT_THAT(fires(jump, {{{"loss", 5}}, {{"loss", 4.5}}, {{"loss", 2}}, {{"loss", 4}}}), ElementsAre(2));
  PolicySet new_high = one_rule("loss > max(loss)");
  EXPECT_THAT(fires(new_high, {{{"loss", 5}}, {{"loss", 6}}, {{"loss", 4}}, {{"loss", 7}}}),
              ElementsAre(1, 3));
  PolicySet divide = one_rule("loss / zero > 1");
  EXPECT_THAT(fires(divide, {{{"loss", 0}, {"zero", 0}}}), ElementsAre());  // nan compares false

  // "or" is decided by a known true side even when the other reads a metric never seen; "and" is unknown.
  PolicySet either = one_rule("grad_norm > 10 or never_seen > 1");
  EXPECT_THAT(fires(either, {{{"grad_norm", 20}}}), ElementsAre(0));
  PolicySet both = one_rule("grad_norm > 10 and never_seen > 1");
  EXPECT_THAT(fires(both, {{{"grad_norm", 20}}}), ElementsAre());
  // A metric missing from a record takes its latest earlier value.
  PolicySet latest = one_rule("loss > 1 and dp_epsilon > 2");
  EXPECT_THAT(fires(latest, {{{"dp_epsilon", 3}}, {{"loss", 2}}}), ElementsAre(1));
}

TEST(GovernancePolicy, DescribeListsTheRulesForTheAuditLog) {
  PolicySet set = PolicySet::parse(
      "[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\naction = \"alert\"\n[[rule]]\nname = \"b\"\nwhen = \"y < "
      "0\"\n"
      "action = \"halt\"\n",
      "p.toml");
  EXPECT_EQ(set.describe().dump(),
            R"([{"action":"alert","name":"a","when":"x > 1"},{"action":"halt","name":"b","when":"y < 0"}])");
  std::vector<Decision> d = set.evaluate({{"x", 2}, {"y", -1}});
  ASSERT_EQ(d.size(), 2u);  // in file order
  EXPECT_EQ(d[0].rule, "a");
  EXPECT_EQ(d[1].rule, "b");
}

}  // namespace
}  // namespace triad
