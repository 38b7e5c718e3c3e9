#include "triad/cli/cli.h"
#include "triad/comm/context.h"

int main(int argc, char** argv) {
  // Finalises MPI if a command started it (or aborts the job after an error, so that no rank waits on us).
  return triad::comm::shutdown(triad::cli::run(argc, argv));
}
