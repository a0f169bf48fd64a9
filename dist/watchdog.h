#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace ocm::dist {

// Note [collective timeout]
// A rank that dies or stalls leaves the others blocked inside a collective, where no error ever
// arrives. Each MPI communicator owns a watchdog: a thread that every blocking collective
// (wait(), broadcast(), barrier()) arms with a deadline; if one outlives it, the watchdog logs
// which collective timed out (the log line carries the rank and step) and aborts the whole job
// (abort_processes, then _exit) with kExitTimeout. One armed wait at a time: a communicator's
// blocking calls come from one thread, one after another. The NCCL communicator watches its
// own collectives the same way, with ncclCommAbort (dist/nccl_communicator.cpp).
// While it lives, says what the calling thread's collectives are for; a timeout names it beside
// the collective ("a barrier (after the stop checkpoint) did not complete ..."). Nested ones
// restore the outer purpose when they end.
class CollectivePurpose {
 public:
  explicit CollectivePurpose(std::string purpose);
  ~CollectivePurpose();
  CollectivePurpose(const CollectivePurpose&) = delete;
  CollectivePurpose& operator=(const CollectivePurpose&) = delete;

 private:
  std::string outer_;
};

class Watchdog {
 public:
  explicit Watchdog(double timeout_seconds);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Armed for the lifetime of the returned object.
  class Armed {
   public:
    explicit Armed(Watchdog& watchdog) : watchdog_(watchdog) {}
    ~Armed() { watchdog_.disarm(); }
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;

   private:
    Watchdog& watchdog_;
  };
  [[nodiscard]] Armed arm(const std::string& what);

 private:
  void disarm();
  void watch();

  std::chrono::duration<double> timeout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int armed_ = 0;  // arms not yet released; the newest one's deadline and label apply
  bool stopping_ = false;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

}  // namespace ocm::dist
