#pragma once

namespace ocm::trainer {

// Note [stopping on a signal]
// SIGTERM, SIGINT and SIGUSR1 (what schedulers send before a time limit or preemption) only set
// a flag here. The trainer folds the flag into the small all-reduce it does every step, so all
// ranks see a stop request in the same step even when the signal reached one of them; they
// finish that step, write a checkpoint and exit with kExitStopped. A second signal on a process
// that is already stopping ends it at once (exit code 128 + signal), for a user who will not
// wait for the checkpoint.

// Installs the handlers (idempotent) and clears any earlier request.
void install_stop_handlers();

// The signal number that asked this process to stop, or 0.
int stop_requested();

// Restores the default dispositions.
void remove_stop_handlers();

}  // namespace ocm::trainer
