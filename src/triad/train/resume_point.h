#pragma once
// Which checkpoint `train --resume RUN` continues from, and clearing the way after it.
//
// A checkpoint is valid when its manifest reads, its "step" is its directory's N, every file the manifest
// lists still has its SHA-256 and, when the run has an audit log, manifest.json is the one the log recorded
// for it. The last catches an edited manifest (another sampler cursor resumes on another data order) and a
// checkpoint renamed into place by a process killed before it was logged.
//
// Resume takes the newest valid checkpoint, or the one named with --checkpoint (still checked). Checkpoint
// directories after it, valid or not, would block the run from writing those steps again: they are moved,
// not deleted, to RUN/checkpoints/rejected/step_N-<why>/, each with a warning saying why.

#include <string>
#include <vector>

#include "triad/train/checkpoint.h"

namespace triad {

struct SetAside {
  std::string dir;
  int step = 0;
  std::string reason;  // one line: why it is not resumed from
  std::string label;   // a word for its name under rejected/: "no-manifest", "invalid", "unlogged", "newer"
};

struct ResumePoint {
  std::string dir;
  CheckpointManifest manifest;
  std::vector<SetAside> newer;                // the checkpoint directories after it
  std::vector<std::string> dead_temporaries;  // step_N.tmp-PID/ whose process is gone: a write cut short
};

// Chooses the checkpoint: `chosen` ("step_N", or the path of a step_N/ in RUN/checkpoints/) or, when empty,
// the newest valid one. Changes nothing on disk. A usage error when there is no checkpoint or `chosen` is
// not one of the run's; an error listing each checkpoint and why it is invalid when none is valid.
ResumePoint find_resume_point(const std::string& run_dir, const std::string& chosen);

// Moves `point.newer` to RUN/checkpoints/rejected/ with a warning each, and removes the dead processes'
// temporaries (triad's own, half-written) with an info line. Call once the resume is certain to go ahead.
void clear_after_resume_point(const std::string& run_dir, const ResumePoint& point);

}  // namespace triad
