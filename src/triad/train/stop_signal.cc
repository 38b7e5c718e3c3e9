#include "triad/train/stop_signal.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "triad/comm/context.h"
#include "triad/core/error.h"

namespace triad {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal) {
  if (g_stop_signal != 0) {
    // The second signal: the default action (termination by this signal), now.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  g_stop_signal = signal;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes go on; the trainer looks at the flag between steps
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) {
    if (sigaction(signal, &action, nullptr) != 0)
      fail("cannot install the {} handler: {}", signal, errno_text());
  }
}

int stop_signal() {
  return g_stop_signal;
}

const char* stop_signal_name(int signal) {
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGUSR1) return "SIGUSR1";
  return "a stop signal on another rank";
}

void test_signal_hook(int next_step) {
  static const char* spec = std::getenv("TRIAD_TEST_SIGNAL_AT");
  if (!spec || !*spec) return;
  int rank = 0, step = 0, count = 0;
  char name[8] = {}, once[4096] = {};
  if (std::sscanf(spec, "%d:%d:%7[A-Z]:%d:%4095s", &rank, &step, name, &count, once) != 5 || count < 1) {
    fail_usage("TRIAD_TEST_SIGNAL_AT={} is not RANK:STEP:KILL|TERM|INT|USR1:COUNT:ONCE_FILE", spec);
  }
  if (step != next_step || rank != std::max(0, comm::launch_rank())) return;
  const int signal = std::strcmp(name, "KILL") == 0   ? SIGKILL
                     : std::strcmp(name, "TERM") == 0 ? SIGTERM
                     : std::strcmp(name, "INT") == 0  ? SIGINT
                     : std::strcmp(name, "USR1") == 0 ? SIGUSR1
                                                      : 0;
  if (signal == 0) fail_usage("TRIAD_TEST_SIGNAL_AT={}: the signal is KILL, TERM, INT or USR1", spec);
  const int fd = ::open(once, O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) return;  // fired already, in an earlier attempt
  ::close(fd);
  for (int i = 0; i < count; ++i) std::raise(signal);
}

}  // namespace triad
