#pragma once
// Trainer's parts (trainer.h): what one step is made of. Shared by trainer.cc, which builds and runs them,
// and stage_balance.cc, which rebuilds them when pipeline stages trade blocks.

#include <memory>
#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/core/clock.h"
#include "triad/data/sampler.h"
#include "triad/model/gpt.h"
#include "triad/parallel/balance.h"
#include "triad/parallel/distributed_optimizer.h"
#include "triad/parallel/layout.h"
#include "triad/parallel/model_parallel.h"
#include "triad/parallel/pipeline_schedule.h"
#include "triad/remat/controller.h"
#include "triad/train/batch_gradient.h"
#include "triad/train/dp_sgd.h"
#include "triad/train/energy.h"
#include "triad/train/fused_update.h"
#include "triad/train/pipeline_batches.h"
#include "triad/train/teacher.h"
#include "triad/train/trainer.h"

namespace triad {

// What one step is made of: the layout, this rank's part of the model, the data, and the objects that run
// the step's parts.
struct Trainer::Impl {
  Impl(comm::Context& context, const TrainOptions& o)
      : comm(context),
        layout(parallel::Layout::of(context.world(), o.tensor_parallel, o.pipeline_parallel)),
        at(parallel::coordinates(layout, context.rank())),
        stage_first(o.stage_first_blocks()),
        groups(parallel::split_groups(context, layout)),
        tensor_group(*groups.tensor),
        model(o.model, parallel::shard_of(layout, at, stage_first), &tensor_group),
        energy(o.energy) {}
  bool model_parallel() const { return layout.tensor * layout.pipeline > 1; }
  std::vector<int> stage_blocks() const { return parallel::stage_counts(stage_first); }
  // Of the ranks holding one copy of the model, the one that reports its loss: tensor rank 0 of the last
  // stage.
  bool reports() const { return at.tensor == 0 && at.pipeline == layout.pipeline - 1; }

  comm::Context& comm;
  parallel::Layout layout;
  parallel::Coordinates at;
  std::vector<int> stage_first;  // the first block of each pipeline stage
  parallel::Groups groups;
  parallel::ContextTensorGroup tensor_group;
  Gpt<float> model;
  std::unique_ptr<Teacher> teacher;  // with --teacher, opened (and checked) before the trainer
  std::unique_ptr<TokenDataset> train, val;
  std::unique_ptr<Sampler> sampler;
  std::string data_manifest_sha256;
  std::unique_ptr<DpSgd> dp;                                  // with --dp-noise
  std::unique_ptr<BatchGradient> gradient;                    // language modelling, or DP-SGD
  PipelineBatches* pipeline = nullptr;                        // the gradient, under pipeline parallelism
  LanguageModelBatches* language_model = nullptr;             // the gradient, without either
  std::unique_ptr<parallel::RowBalancer> balance;             // with --balance static or online
  double test_speed = 0;                                      // TRIAD_TEST_SLOW_RANK: rows per second
  double test_block = 0;                                      // TRIAD_TEST_SLOW_RANK: a block's seconds
  int rows = 0;                                               // --balance: this rank's rows last step
  std::unique_ptr<parallel::DistributedOptimizer> optimizer;  // reduction, clip, AdamW, ZeRO-1
  std::unique_ptr<FusedUpdate> fused;                         // with --fused-update: AdamW in the backward
  std::unique_ptr<RematController> remat;                     // with --remat or --activation-memory
  std::unique_ptr<parallel::StageBalancer> stages;            // with --balance online under pipelines
  std::vector<int> move_to;  // --balance online: blocks per stage to move to after this step
  double moved_ms = 0;       // --balance online: the last move's time, for the next step's record
  Clock::time_point started = Clock::now();
  EnergyMeter energy;  // RAPL or an estimate, from here to the end event
};

}  // namespace triad
