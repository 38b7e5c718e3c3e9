// check_training_memory (train/memory_check.h): a model too large for the machine is refused from its flags
// before anything is allocated. --layers 100000 grew past 15 GB before it failed.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "train_test_util.h"
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
}

}  // namespace
}  // namespace triad
