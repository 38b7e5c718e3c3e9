#include "triad/core/log.h"

namespace triad {

namespace {
bool g_quiet = false;
}

void set_quiet(bool quiet) {
  g_quiet = quiet;
}
bool quiet() {
  return g_quiet;
}

}  // namespace triad
