#include "dist/watchdog.h"

#include <unistd.h>

#include <utility>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "dist/topology.h"

namespace ocm::dist {

namespace {

thread_local std::string current_purpose;

}  // namespace

CollectivePurpose::CollectivePurpose(std::string purpose)
    : outer_(std::exchange(current_purpose, std::move(purpose))) {}

CollectivePurpose::~CollectivePurpose() {
  current_purpose = std::move(outer_);
}

Watchdog::Watchdog(double timeout_seconds)
    : timeout_(timeout_seconds), thread_([this] { watch(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

Watchdog::Armed Watchdog::arm(const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++armed_;
    what_ = current_purpose.empty() ? what : what + " (" + current_purpose + ")";
    deadline_ = std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout_);
  }
  changed_.notify_all();
  return Armed(*this);
}

void Watchdog::disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  --armed_;
}

void Watchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (armed_ == 0) {
      changed_.wait(lock);
      continue;
    }
    const auto deadline = deadline_;
    if (changed_.wait_until(lock, deadline,
                            [&] { return stopping_ || armed_ == 0 || deadline_ != deadline; }))
      continue;
    spdlog::critical(
        "{} did not complete within {:.0f} s (dist.timeout_s, or --timeout): another rank has "
        "stalled or died. "
        "Aborting the job; rerun the same command to resume from the last checkpoint.",
        what_, timeout_.count());
    spdlog::default_logger()->flush();
    abort_processes(kExitTimeout);
    _exit(kExitTimeout);
  }
}

}  // namespace ocm::dist
