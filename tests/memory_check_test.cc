// check_training_memory (train/memory_check.h): a model too large for the machine is refused from its flags
// before anything is allocated. --layers 100000 grew past 15 GB before it failed.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "train_test_util.h"
#include "triad/core/error.h"
#include "triad/remat/planner.h"
#include "triad/train/memory_check.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using testing::RefusedWith;
using testing::TempDir;
using testing::train_args;

TEST(MemoryCheck, AModelTooLargeForTheMachineIsRefusedNamingItsFlags) {
  TempDir dir;
  for (const std::string flags :
       {"--layers 100000", "--d-model 1000000", "--layers 2000000000 --d-model 40000"}) {
    // Under a 4 GB address-space limit, so that a regression fails (out of memory, exit 1) without growing;
    // not under AddressSanitizer, which reserves terabytes of address space for its shadow memory.
    const std::string limit = testing::kSanitized ? "" : "ulimit -v 4000000 && ";
    auto r = testing::run_command(limit + std::string(TRIAD_BINARY) + " " +
                                  train_args(dir / "big", flags + " --steps 2"));
    EXPECT_THAT(r, RefusedWith(flags)) << flags;
    EXPECT_THAT(r, RefusedWith("of memory")) << flags;
    EXPECT_FALSE(fs::exists(dir / "big")) << flags;
  }
}

// What the check counts is held for certain, so that it never refuses a model that would fit.
TEST(MemoryCheck, TheEstimateIsALowerBoundOfWhatTrainingHolds) {
  TrainOptions o;
  o.model = {.layers = 3, .d_model = 32, .heads = 2, .seq_len = 16, .vocab = 300};
  o.batch = 4;
  o.grad_accum = 2;
  const size_t params = o.model.num_parameters();
  const TrainingMemory m = training_memory(o, 1);
  EXPECT_EQ(m.parameters, static_cast<double>(params));
  EXPECT_EQ(m.model_bytes, 2.0 * sizeof(float) * params);
  EXPECT_EQ(m.optimizer_bytes, 2.0 * sizeof(float) * params);
  EXPECT_EQ(m.micro_batch, 2);
  const ActivationProfile profile = ActivationProfile::for_shape(o.model, 2, 16);
  const size_t keep_all = simulate(RematPlan::keep_all(3), profile).peak_bytes;
  EXPECT_LE(m.activation_bytes, keep_all);
  EXPECT_GT(m.activation_bytes, keep_all * 0.8);

  o.remat.planner = "full";
  const TrainingMemory remat = training_memory(o, 1);
  EXPECT_LE(remat.activation_bytes, simulate(make_plan(PlannerKind::kFull, profile, 0), profile).peak_bytes);

  o.comm.zero = 1;
  EXPECT_EQ(training_memory(o, 2).optimizer_bytes, sizeof(float) * params);
  // A save gathers the moments whole on every rank under ZeRO-1; unsharded the optimizer lends its own.
  EXPECT_EQ(training_memory(o, 2).checkpoint_bytes, 2.0 * sizeof(float) * params);
  EXPECT_EQ(training_memory(o, 1).checkpoint_bytes, 0);
}

// --memory-limit: the cheapest combination that fits. L12 d768 (91M parameters) takes 16 bytes a
// parameter with fp32 states, 10 with 8-bit ones and about 6 with the fused update as well.
TEST(MemoryLimit, ChoosesTheCheapestCombinationThatFits) {
  TrainOptions o;
  o.model = {.layers = 12, .d_model = 768, .heads = 12, .seq_len = 64, .vocab = 8192};
  o.batch = 2;
  auto fit = [&](const std::string& limit, bool resuming = false) {
    TrainOptions given = o;
    given.memory_limit = limit;
    return fit_training_memory(given, 1, resuming, false);
  };
  TrainOptions chosen = fit("4GiB");
  EXPECT_EQ(chosen.optimizer_states, "fp32");
  EXPECT_FALSE(chosen.fused_update);
  EXPECT_FALSE(chosen.remat.active());
  chosen = fit("1200MiB");
  EXPECT_EQ(chosen.optimizer_states, "8bit");
  EXPECT_FALSE(chosen.fused_update);
  chosen = fit("800MiB");
  EXPECT_EQ(chosen.optimizer_states, "8bit");
  EXPECT_TRUE(chosen.fused_update);
  const TrainingMemory m = training_memory(chosen, 1);
  EXPECT_LE(m.total() + kProcessBytes, 800.0 * (1 << 20));
  // A resumed run keeps its states: fp32 needs the fused update where 8-bit alone would have done.
  chosen = fit("1400MiB", true);
  EXPECT_EQ(chosen.optimizer_states, "fp32");
  EXPECT_TRUE(chosen.fused_update);
  // Too small for anything: the limit and the least it needs.
  try {
    fit("300MiB");
    ADD_FAILURE() << "300MiB fits nothing";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--memory-limit 300MiB"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("need at least"));
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  }
  // The fused update needs one process: on 2 data-parallel ranks the limit finds no fused combination.
  TrainOptions two = o;
  two.memory_limit = "800MiB";
  EXPECT_THROW(fit_training_memory(two, 2, false, false), Error);
}

}  // namespace
}  // namespace triad
