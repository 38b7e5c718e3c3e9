// Tier I end to end (mpirun, up to 4 ranks): every tensor x pipeline x data layout trains the model the one
// process trains, from the same global batch: the same losses, gradient norms and validation losses to 1e-5
// (relative) over 20 steps; a run resumes bit-exactly at its layout and within 1e-5 of that at another (the
// checkpoint holds whole tensors); layouts that cannot work are refused before anything is written.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/model/params.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RefusedWith;
using testing::run_triad;
using testing::run_triad_mpi;
using testing::TempDir;

// 5 blocks (uneven splits for 2 and 4 stages), 4 heads and a vocabulary of 400 (divisible by 2 and 4),
// 4 micro-batches of 2 sequences.
std::string model_args(const std::string& run, const std::string& extra) {
  return testing::train_args(run,
                             "--layers 5 --heads 4 --batch 8 --grad-accum 4 --steps 20 --eval-every 10 "
                             "--threads 1 --comm-timeout 60 " +
                                 extra);
}

// (step, field) -> value of every loss-like field of a run's metrics.
std::map<std::pair<int, std::string>, double> curves(const std::string& run) {
  std::map<std::pair<int, std::string>, double> out;
  for (const auto& m : testing::metrics(run)) {
    for (const char* key : {"loss", "grad_norm", "val_loss"}) {
      if (m.contains(key)) out[{m["step"].get<int>(), key}] = m[key].get<double>();
    }
  }
  return out;
}

void expect_close(const std::string& what, const std::string& run, const std::string& reference,
                  double tolerance, int from_step = 0) {
  const auto got = curves(run), want = curves(reference);
  int compared = 0;
  for (const auto& [key, value] : want) {
    if (key.first <= from_step) continue;
    ASSERT_TRUE(got.contains(key)) << what << ": no " << key.second << " at step " << key.first;
    const double rel = std::fabs(got.at(key) - value) / std::fabs(value);
    EXPECT_LE(rel, tolerance) << what << ": " << key.second << " at step " << key.first << ": " << got.at(key)
                              << " vs " << value;
    ++compared;
  }
  EXPECT_GE(compared, 20) << what;
}

void train(int ranks, const std::string& run, const std::string& flags) {
  auto r = ranks == 1 ? run_triad(model_args(run, flags)) : run_triad_mpi(ranks, model_args(run, flags));
  ASSERT_EQ(r.exit_code, 0) << run << ": " << r.err;
}

TEST(ModelParallel, EveryLayoutTrainsWhatOneProcessTrains) {
  TempDir dir;
  const std::string one = dir / "one";
  train(1, one, "");
  struct Case {
    const char* name;
    int ranks;
    const char* flags;
  };
  std::vector<Case> cases = {
      {"tp2", 2, "--tensor-parallel 2"},
      {"pp2 1f1b", 2, "--pipeline-parallel 2"},
      {"pp2 gpipe", 2, "--pipeline-parallel 2 --pipeline-schedule gpipe"},
      {"dp2 x tp2", 4, "--tensor-parallel 2"},
      {"dp2 x tp2, ZeRO-1", 4, "--tensor-parallel 2 --zero 1"},
      {"dp2 x pp2", 4, "--pipeline-parallel 2"},
      {"dp2 x pp2, ZeRO-1, fp16", 4, "--pipeline-parallel 2 --zero 1 --grad-compression fp16"},
      {"tp2 x pp2", 4, "--tensor-parallel 2 --pipeline-parallel 2"},
      {"pp4 uneven", 4, "--pipeline-parallel 4 --pipeline-split 2,1,1,1"},
      {"tp2 x pp2, remat", 4, "--tensor-parallel 2 --pipeline-parallel 2 --activation-memory 0.5x"},
  };
  if (testing::kSanitized) cases = {cases[7]};  // both kinds of parallelism in one run, under ASan
  for (const Case& c : cases) {
    const std::string run = dir / fmt::format("run{}", &c - cases.data());
    train(c.ranks, run, c.flags);
    // fp16 rounds the gradients the data-parallel ranks exchange: close, not equal.
    expect_close(c.name, run, one, std::string(c.flags).find("fp16") == std::string::npos ? 1e-5 : 1e-2);
  }
}

// An attention width other than --d-model (--head-size, the shape head pruning leaves) splits by head too:
// 4 heads of 12 channels (A 48 > C 32) and a 40-unit MLP on 2 tensor ranks train what one process trains.
TEST(ModelParallel, Tp2WithAHeadSizeTrainsWhatOneProcessTrains) {
  TempDir dir;
  const std::string one = dir / "one", tp2 = dir / "tp2";
  train(1, one, "--head-size 12 --mlp-width 40");
  train(2, tp2, "--tensor-parallel 2 --head-size 12 --mlp-width 40");
  expect_close("tp2 with --head-size 12", tp2, one, 1e-5);
}

TEST(ModelParallel, ResumesAtItsLayoutExactlyAndAtAnotherClosely) {
  TempDir dir;
  const std::string run = dir / "run";
  train(4, run, "--tensor-parallel 2 --pipeline-parallel 2 --ckpt-every 10 --keep-ckpts 5");
  auto resume = [&](const std::string& copy, int ranks, const std::string& flags) {
    fs::copy(run, copy, fs::copy_options::recursive);
    const std::string args = "train -q --resume " + copy + " --checkpoint step_10 --threads 1 " + flags;
    auto r = ranks == 1 ? run_triad(args) : run_triad_mpi(ranks, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  const std::string same = dir / "same", plain = dir / "plain", one = dir / "one";
  resume(same, 4, "");
  const auto a = curves(run), b = curves(same);
  for (const auto& [key, value] : a) {
    if (key.first > 10) {
      EXPECT_EQ(b.at(key), value) << key.second << " at step " << key.first;
    }
  }
  resume(plain, 2, "--tensor-parallel 1 --pipeline-parallel 1");  // data parallel on 2 ranks
  expect_close("tp2 x pp2 resumed on 2 data-parallel ranks", plain, same, 1e-5, 10);
  resume(one, 1, "--tensor-parallel 1 --pipeline-parallel 1");
  expect_close("tp2 x pp2 resumed in one process", one, same, 1e-5, 10);
}

// With data-parallel copies of a model-parallel layout the checkpoint's gradient-sync state is rank 0's
// data group's bucket plan, which another stage or slice does not share: resuming dp2 x tp2 or dp2 x pp2
// failed on it until 2026-12-06.
TEST(ModelParallel, ResumesWithDataParallelCopiesExactly) {
  TempDir dir;
  for (const std::string layout : {"--tensor-parallel 2", "--pipeline-parallel 2 --zero 1"}) {
    SCOPED_TRACE(layout);
    const std::string run = dir / "run", again = dir / "again";
    fs::remove_all(run);
    fs::remove_all(again);
    train(4, run, layout + " --steps 6 --eval-every 0 --ckpt-every 3");
    fs::copy(run, again, fs::copy_options::recursive);
    fs::remove_all(again + "/checkpoints/step_000006");
    auto r = run_triad_mpi(4, "train -q --resume " + again + " --threads 1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(curves(again), curves(run));
  }
}

TEST(ModelParallel, RefusesLayoutsThatCannotWork) {
  TempDir dir;
  const std::string run = dir / "run";
  EXPECT_THAT(run_triad(model_args(run, "--tensor-parallel 2")),
              RefusedWith("1 ranks do not divide into --tensor-parallel 2"));
  EXPECT_THAT(run_triad(model_args(run, "--tensor-parallel 3")), RefusedWith("--tensor-parallel"));
  auto r = run_triad_mpi(2, model_args(run, "--tensor-parallel 2 --heads 3 --d-model 30"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--tensor-parallel 2 does not divide the 3 heads"));
  r = run_triad_mpi(2, model_args(run, "--pipeline-parallel 2 --pipeline-split 2,2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("covers 4 of 5 blocks"));
  r = run_triad_mpi(2, model_args(run, "--tensor-parallel 2 --grad-compression topk:0.1"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--grad-compression topk:0.1 keeps per-rank state"));
  EXPECT_FALSE(fs::exists(run)) << "refused before creating the run";
}

TEST(ModelParallel, LayoutAutoRunsThePlannersChoice) {
  TempDir dir;
  const std::string run = dir / "run";
  auto r = run_triad_mpi(2, testing::train_args(run, "--steps 2 --eval-every 0 --threads 1 --layout auto"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json options = read_json_file(run + "/run.json")["options"];
  const int tp = options["tensor_parallel"], pp = options["pipeline_parallel"];
  EXPECT_EQ(2 % (tp * pp), 0);
  EXPECT_THAT(options["grad_compression"].get<std::string>(), ::testing::AnyOf("none", "fp16"));
  EXPECT_THAT(run_triad(testing::train_args(dir / "bad", "--layout fastest")),
              RefusedWith("--layout fastest: expected manual or auto"));
}

// A shard's slices of a tensor, over the tensor-parallel ranks, cover the whole tensor exactly once.
TEST(ModelParallel, TensorSlicesPartitionEachTensor) {
  GptConfig c;
  c.layers = 2;
  c.d_model = 24;
  c.heads = 4;
  c.seq_len = 8;
  c.vocab = 40;
  const ParameterLayout whole(c);
  for (int n : {2, 4}) {
    std::vector<int> covered(whole.count(), 0);
    std::vector<float> source(whole.count()), rebuilt(whole.count(), -1);
    for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<float>(i);
    for (int r = 0; r < n; ++r) {
      const ParameterLayout part(c, {.blocks = c.layers, .tensor_rank = r, .tensor_size = n});
      std::vector<float> slice(part.count());
      for (const TensorSpec& t : part.tensors()) {
        const TensorSpec& w = *whole.find(t.name);
        copy_slice(t, source.data() + w.offset, slice.data() + t.offset);
        copy_from_slice(t, slice.data() + t.offset, rebuilt.data() + w.offset);
        std::vector<float> ones(t.count, 1), marks(w.count, 0);
        copy_from_slice(t, ones.data(), marks.data());
        for (size_t i = 0; i < w.count; ++i) covered[w.offset + i] += marks[i] > 0;
        if (t.name == "h.1.attn.qkv.weight") {  // rank r's heads of q, k and v: rows r·C/n.. of each third
          EXPECT_EQ(slice[t.offset], source[w.offset + static_cast<size_t>(r) * 24 / n * 24]);
          EXPECT_EQ(slice[t.offset + t.count / 3],
                    source[w.offset + (24 + static_cast<size_t>(r) * 24 / n) * 24]);
        }
      }
    }
    EXPECT_EQ(rebuilt, source);
    for (const TensorSpec& w : whole.tensors()) {
      const bool split = w.name.find("qkv") != std::string::npos || w.name.find("fc.") != std::string::npos ||
                         w.name.ends_with("proj.weight") || w.name == "wte.weight";
      EXPECT_EQ(covered[w.offset], split ? 1 : n) << w.name << " over " << n << " ranks";
    }
  }
}

}  // namespace
}  // namespace triad
