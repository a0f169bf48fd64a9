#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace ocm::trainer {

inline constexpr int kSlowWriteSeconds = 3;

// Note [fault injection]
// The failure paths of a distributed trainer (a rank that throws, a rank that stalls, a
// non-finite gradient) must be tested with real processes, where nothing can be mocked. The
// environment variable OCM_FAULT=KIND:RANK:STEP makes rank RANK misbehave at global step STEP:
//   throw  throws an internal error;
//   stall  sleeps forever, inside the step, as a hung rank would;
//   nan    turns its loss into NaN, so the averaged gradient is NaN on every rank;
//   slow_write  holds the background write of the checkpoint taken after STEP steps for
//          kSlowWriteSeconds before it starts, while training goes on (only rank 0 writes).
// The tests in tests/e2e set it; nothing else should.
struct Fault {
  std::string kind;  // empty: none
  int rank = -1;
  int64_t step = -1;

  // Called once at the start of every step: at the fault's rank and step, throws or stalls as
  // its kind says; returns true when this step's loss is to be made NaN.
  bool inject(int rank_now, int64_t step_now) const;
  // What the background write of the checkpoint after `completed_steps` runs first: a sleep for
  // slow_write at its rank and step, else nothing.
  std::function<void()> write_hook(int rank_now, int64_t completed_steps) const;
};

// Reads OCM_FAULT; throws UserError naming it when it is malformed.
Fault fault_from_environment();

}  // namespace ocm::trainer
