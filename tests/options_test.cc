// Options declared once (core/options.h): the table of `triad train` against its JSON, the resume rules and
// the value checks; and the options of runs written before the table existed.

#include "triad/core/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "triad/cli/options.h"
#include "triad/core/error.h"
#include "triad/train/options.h"

namespace triad {
namespace {

using ::testing::HasSubstr;

// Every declared option set to a value other than its default, so that a key the serialiser drops or
// reads into another member shows.
TrainOptions all_changed() {
  TrainOptions o;
  int i = 0;
  for (const Option<TrainOptions>& option : TrainOptions::options().all()) {
    ++i;
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, std::string>) {
            *p = "value-" + std::to_string(i);
          } else if constexpr (std::is_same_v<T, bool>) {
            *p = !*p;
          } else if constexpr (std::is_same_v<T, double>) {
            *p = *p + 0.125 * i;
          } else {
            *p = static_cast<T>(*p + i);
          }
        },
        option.field(o));
  }
  return o;
}

TEST(TrainOptionsTable, EveryOptionSurvivesJsonUnderItsOwnKey) {
  const TrainOptions o = all_changed();
  const nlohmann::json j = o.to_json();
  EXPECT_EQ(j.size(), TrainOptions::options().all().size());
  const TrainOptions back = TrainOptions::from_json(j, "test");
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.model, o.model);
  EXPECT_EQ(back.comm.grad_compression, o.comm.grad_compression);
  EXPECT_EQ(back.remat.budget, o.remat.budget);
  EXPECT_EQ(back.dp_delta, o.dp_delta);
  // Keys are the flag names with '_' for '-'.
  for (const char* key : {"grad_compression", "activation_memory", "d_model", "topk_lr_scale", "vocab"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
}

TEST(TrainOptionsTable, NumbersAreStoredAsTyped) {
  TrainOptions o;
  o.lr = 3e-3;
  o.beta1 = 0.9;
  const std::string text = o.to_json().dump();
  EXPECT_THAT(text, HasSubstr("\"lr\":0.003,"));
  EXPECT_THAT(text, HasSubstr("\"beta1\":0.9,"));
}

// run.json and checkpoints before 2026-12 nested the model and wrote floats as doubles; they read back as
// the values the run trained with.
TEST(TrainOptionsTable, ReadsTheOptionsOfEarlierRuns) {
  const nlohmann::json old = nlohmann::json::parse(R"({
      "data": "data/bundled", "out": "runs/a", "batch": 16, "grad_accum": 1, "steps": 600,
      "lr": 0.003000000026077032, "min_lr_ratio": 0.10000000149011612, "warmup": 50,
      "weight_decay": 0.10000000149011612, "beta1": 0.8999999761581421, "beta2": 0.949999988079071,
      "clip": 1.0, "seed": 1234, "eval_every": 200, "eval_batches": 20, "ckpt_every": 200, "keep_ckpts": 3,
      "log_every": 10, "threads": 2, "remat": "", "activation_memory": "", "replan_every": 0,
      "sample_prompt": "The", "sample_tokens": 48, "grad_compression": "none", "bucket_mb": 4.0,
      "model": {"layers": 4, "d_model": 256, "heads": 4, "seq_len": 128, "vocab": 8192}})");
  const TrainOptions o = TrainOptions::from_json(old, "old/run.json");
  EXPECT_EQ(o.model.layers, 4);
  EXPECT_EQ(o.model.vocab, 8192);
  EXPECT_EQ(static_cast<float>(o.lr), 3e-3f);
  EXPECT_EQ(static_cast<float>(o.beta1), 0.9f);
  // Runs from before --topk-beta1 and --topk-lr-scale trained top-K buckets with beta1 and the full rate.
  EXPECT_EQ(o.topk_beta1, o.beta1);
  EXPECT_EQ(o.topk_lr_scale, 1.0);
}

TEST(TrainOptionsTable, AValueOfTheWrongTypeNamesTheFileAndKey) {
  nlohmann::json j = TrainOptions().to_json();
  j["batch"] = "sixteen";
  try {
    TrainOptions::from_json(j, "RUN/run.json");
    FAIL() << "accepted a string batch";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("RUN/run.json: option batch = \"sixteen\" is not a whole number"));
  }
}

TEST(TrainOptionsTable, ResumeChecksWhatTheRunIsAndTakesHowItRuns) {
  TrainOptions run, command;
  run.model.layers = 2;
  run.threads = 4;
  run.comm.comm_timeout = 30;
  command.model.layers = 3;
  command.threads = 1;
  command.comm.comm_timeout = 99;
  command.eval_every = 7;
  const auto& table = TrainOptions::options();
  // --layers given with another value: refused, naming both.
  try {
    options_for_resume(table, run, command, {"layers"}, "RUN");
    FAIL() << "resumed with another model";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), HasSubstr("the run was trained with layers = 2, the command asks 3"));
  }
  // Not given: the run's model; --threads given: the command's; --eval-every not given: the run's;
  // --comm-timeout is the command's whether given or not.
  const TrainOptions merged = options_for_resume(table, run, command, {"threads"}, "RUN");
  EXPECT_EQ(merged.model.layers, 2);
  EXPECT_EQ(merged.threads, 1);
  EXPECT_EQ(merged.eval_every, run.eval_every);
  EXPECT_EQ(merged.comm.comm_timeout, 99);
}

TEST(TrainOptionsTable, ChecksSayTheFlagAndTheValueAsTyped) {
  auto refused = [](TrainOptions o) -> std::string {
    try {
      o.validate();
    } catch (const Error& e) {
      return e.what();
    }
    return "accepted";
  };
  TrainOptions o;
  o.lr = -1;
  EXPECT_EQ(refused(o), "--lr must be a positive number, got -1");
  o = {};
  o.min_lr_ratio = std::nan("");
  EXPECT_EQ(refused(o), "--min-lr-ratio must be a non-negative number, got nan");
  o = {};
  o.beta2 = 1;
  EXPECT_EQ(refused(o), "--beta2 must be in [0, 1), got 1");
  o = {};
  o.comm.zero = 2;
  EXPECT_EQ(refused(o), "--zero must be one of 0, 1, got 2");
  o = {};
  o.steps = 0;
  EXPECT_EQ(refused(o), "--steps must be positive, got 0");
  EXPECT_EQ(refused(TrainOptions{}), "accepted");
}

TEST(TrainOptionsTable, EveryFlagIsOnTheCommandLineWithItsGroup) {
  CLI::App app{"test"};
  TrainOptions o;
  cli::add_options(app, TrainOptions::options(), o);
  int flags = 0;
  for (const Option<TrainOptions>& option : TrainOptions::options().all()) {
    const CLI::Option* flag = app.get_option_no_throw("--" + option.name);
    EXPECT_EQ(flag != nullptr, option.is_flag) << option.name;
    if (!flag) continue;
    ++flags;
    if (!option.group.empty()) {
      EXPECT_EQ(flag->get_group(), option.group) << option.name;
    }
  }
  EXPECT_GT(flags, 40);
  app.parse("--layers 3 --lr 0.02 --grad-compression int8 --activation-memory 0.5x --int8-stochastic", false);
  EXPECT_EQ(o.model.layers, 3);
  EXPECT_EQ(o.lr, 0.02);
  EXPECT_EQ(o.comm.grad_compression, "int8");
  EXPECT_EQ(o.remat.budget, "0.5x");
  EXPECT_TRUE(o.comm.int8_stochastic);
  EXPECT_EQ(
      cli::given_options(app, TrainOptions::options()),
      (std::set<std::string>{"layers", "lr", "grad-compression", "activation-memory", "int8-stochastic"}));
}

}  // namespace
}  // namespace triad
