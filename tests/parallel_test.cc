// parallel/: the rank layout's arithmetic, and the distributed optimizer in one process against the step
// written out (global-norm clip, then AdamW), with its checkpoint state. Its multi-rank behaviour is what
// the DataParallel end-to-end tests (train_test.cc) run: N ranks train what one process trains.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "triad/core/error.h"
#include "triad/kernels/vector_ops.h"
#include "triad/parallel/distributed_optimizer.h"
#include "triad/parallel/layout.h"
#include "triad/train/records.h"

namespace triad::parallel {
namespace {

TEST(ParallelLayout, CoordinatesAndRanksAreInverse) {
  for (Layout layout : {Layout::of(8, 2, 2), Layout::of(12, 3, 1), Layout::of(6, 1, 3), Layout::of(1)}) {
    std::vector<int> seen(static_cast<size_t>(layout.world()), 0);
    for (int rank = 0; rank < layout.world(); ++rank) {
      const Coordinates at = coordinates(layout, rank);
      EXPECT_LT(at.data, layout.data);
      EXPECT_LT(at.tensor, layout.tensor);
      EXPECT_LT(at.pipeline, layout.pipeline);
      EXPECT_EQ(rank_of(layout, at), rank);
    }
  }
  // Tensor-parallel ranks are neighbours (one node), pipeline stages the outermost.
  const Layout l = Layout::of(8, 2, 2);
  EXPECT_EQ(l.data, 2);
  EXPECT_EQ(coordinates(l, 1).tensor, 1);
  EXPECT_EQ(coordinates(l, 2).data, 1);
  EXPECT_EQ(coordinates(l, 4).pipeline, 1);
}

TEST(ParallelLayout, DegreesThatDoNotDivideTheWorldAreRefused) {
  try {
    Layout::of(6, 4, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("6 ranks do not divide into --tensor-parallel 4"));
  }
}

GptConfig small() {
  return {.layers = 2, .d_model = 16, .heads = 2, .seq_len = 8, .vocab = 40};
}

void fill_params(Gpt<float>& model) {
  for (size_t i = 0; i < model.num_params(); ++i) {
    model.params()[i] = static_cast<float>(std::cos(0.013 * static_cast<double>(i)));
  }
}

void fill_grads(Gpt<float>& model, double scale, int salt) {
  for (size_t i = 0; i < model.num_params(); ++i) {
    model.grads()[i] = static_cast<float>(scale * std::sin(0.37 * static_cast<double>(i * salt + 1)));
  }
}

TEST(DistributedOptimizer, OneProcessClipsByTheGlobalNormThenTakesTheAdamWStep) {
  std::unique_ptr<comm::Context> context = comm::Context::open();
  Gpt<float> model(small()), reference(small());
  for (Gpt<float>* m : {&model, &reference}) {
    fill_params(*m);
    fill_grads(*m, 0.1, 3);  // a norm well above the clip
  }
  DistributedOptimizerOptions options;
  options.clip = 0.5;
  DistributedOptimizer opt(*context, model, options);
  opt.finish_reduction();  // one process: the gradients stay as they are
  const double norm = opt.grad_norm();
  ASSERT_GT(norm, 1.0);
  EXPECT_EQ(norm, global_norm(reference.grads(), reference.num_params()));
  opt.step(1e-3f, norm);

  scale_in_place(reference.grads(), reference.num_params(), static_cast<float>(0.5 / norm));
  AdamW adamw(reference.layout());
  adamw.update(reference.params(), reference.grads(), 1e-3f, options.adamw);
  for (size_t i = 0; i < model.num_params(); ++i) ASSERT_EQ(model.params()[i], reference.params()[i]) << i;
  EXPECT_EQ(opt.stats().ranks, 1);
  EXPECT_EQ(opt.stats().bytes_sent, 0u);
}

// A checkpoint of an unsharded optimizer borrows its moments instead of copying them (a copy would
// need another 2 or 8 bytes per parameter at the end of the largest run that fits), and hands them back
// unchanged, even when the writer fails.
TEST(DistributedOptimizer, LendsItsWholeStateWithoutACopyAndGetsItBack) {
  std::unique_ptr<comm::Context> context = comm::Context::open();
  for (StatePrecision states : {StatePrecision::kFp32, StatePrecision::k8Bit}) {
    Gpt<float> model(small());
    fill_params(model);
    fill_grads(model, 1e-3, 5);
    DistributedOptimizerOptions options;
    options.states = states;
    DistributedOptimizer opt(*context, model, options);
    opt.finish_reduction();
    opt.step(2e-3f, opt.grad_norm());
    const OptimizerState copy = opt.state();
    const float* m = opt.adamw().m().data();
    const uint8_t* codes = opt.adamw().v8().codes.data();
    auto same = [&](const OptimizerState& s) {
      EXPECT_EQ(s.m, copy.m);
      EXPECT_EQ(s.v, copy.v);
      EXPECT_EQ(s.m8.codes, copy.m8.codes);
      EXPECT_EQ(s.v8.absmax, copy.v8.absmax);
      EXPECT_EQ(s.adam_steps, copy.adam_steps);
    };
    opt.with_state([&](const OptimizerState& held) {
      same(held);
      EXPECT_EQ(held.m.data(), m);
      EXPECT_EQ(held.v8.codes.data(), codes);
    });
    EXPECT_THROW(opt.with_state([](const OptimizerState&) { fail("the disk is full"); }), Error);
    EXPECT_EQ(opt.adamw().m().data(), m);
    EXPECT_EQ(opt.adamw().v8().codes.data(), codes);
    same(opt.state());
  }
}

// Saved after one step and loaded into a fresh optimizer, the second step is the same as without the stop.
TEST(DistributedOptimizer, ItsStateResumesTheNextStepExactly) {
  std::unique_ptr<comm::Context> context = comm::Context::open();
  Gpt<float> a(small()), b(small());
  DistributedOptimizer straight(*context, a, {});
  fill_params(a);
  fill_grads(a, 1e-3, 5);
  straight.finish_reduction();
  straight.step(2e-3f, straight.grad_norm());
  const OptimizerState saved = straight.state();
  EXPECT_EQ(saved.adam_steps, 1);
  EXPECT_EQ(saved.m.size(), a.num_params());

  std::copy(a.params(), a.params() + a.num_params(), b.params());
  DistributedOptimizer resumed(*context, b, {});
  resumed.load(saved, "test");
  fill_grads(a, 1e-3, 7);
  fill_grads(b, 1e-3, 7);
  for (DistributedOptimizer* opt : {&straight, &resumed}) {
    opt->finish_reduction();
    opt->step(2e-3f, opt->grad_norm());
  }
  for (size_t i = 0; i < a.num_params(); ++i) ASSERT_EQ(a.params()[i], b.params()[i]) << i;
}

// The step record writes exactly the metrics it declares: each optional part adds its fields.
TEST(StepRecord, WritesTheFieldsMetricFieldsLists) {
  StepRecord r;
  EXPECT_EQ(r.to_json().size(), 9u);
  r.comm = ReductionStats{};
  r.remat = RematController::StepReport{};
  r.privacy = DpSgd::StepReport{};
  r.pipeline = StepRecord::Pipeline{};
  r.pipeline->moved_ms = 1;    // (the move's time is written only after a move)
  r.pipeline->block_ms = {1};  // (and the fitted blocks only where stages share CPUs)
  r.balance = StepRecord::Balance{};
  r.distill = StepRecord::Distill{};
  const nlohmann::json all = r.to_json();
  const nlohmann::json eval = EvalRecord{}.to_json();
  std::set<std::string> written;
  for (const auto& [key, value] : all.items()) written.insert(key);
  for (const auto& [key, value] : eval.items()) written.insert(key);
  std::set<std::string> declared;
  for (const auto& [name, description] : metric_fields()) {
    declared.insert(name);
    EXPECT_FALSE(description.empty()) << name;
  }
  EXPECT_EQ(written, declared);
}

}  // namespace
}  // namespace triad::parallel
