#include "trainer/stop_request.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace ocm::trainer {
namespace {

std::atomic<int> requested{0};
constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1};

void on_signal(int signal) {
  if (requested.exchange(signal) != 0)
    _exit(128 + signal);
  static const char message[] =
      "ocm: stop requested; finishing this step and writing a checkpoint (signal again to exit "
      "at once)\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
  (void)ignored;
}

}  // namespace

void install_stop_handlers() {
  requested = 0;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : kSignals)
    sigaction(signal, &action, nullptr);
}

int stop_requested() {
  return requested.load();
}

void remove_stop_handlers() {
  for (const int signal : kSignals)
    std::signal(signal, SIG_DFL);
}

}  // namespace ocm::trainer
