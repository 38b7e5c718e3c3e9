#pragma once
// The exit codes of triad commands. `triad launch` (train/supervisor.h) reads them to decide whether a
// training job is worth running again, so each means one thing:
//
//   0   done
//   1   the work failed (ErrorKind::kRuntime): bad data, I/O, a dead or silent peer rank, numerics
//   2   the command line or config is wrong (ErrorKind::kUsage); nothing was started
//   3   a --policy rule halted training (a checkpoint was written first)
//   75  preempted: SIGTERM or SIGINT asked training to stop; it wrote a checkpoint at the next step
//       boundary and exited cleanly. 75 is EX_TEMPFAIL of <sysexits.h>, "try again later", and lies outside
//       the 128 + N a shell reports for a process killed by signal N.

namespace triad {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitHalted = 3;
inline constexpr int kExitPreempted = 75;

}  // namespace triad
