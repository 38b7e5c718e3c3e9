#include "triad/cli/cli.h"

int main(int argc, char** argv) {
  return triad::cli::run(argc, argv);
}
