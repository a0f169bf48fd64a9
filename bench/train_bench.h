#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ocm::bench {

struct TrainBenchOptions {
  std::string config = "configs/fashion_mnist.yaml";
  int64_t batch = 32;                  // global
  int64_t steps = 20;                  // timed
  int64_t warmup = 3;                  // untimed steps first
  int64_t threads = 0;                 // per rank; 0: the trainer's default
  std::string dir;                     // scratch run directory; default under $TMPDIR
  std::vector<std::string> overrides;  // KEY=VALUE, applied after the bench's own
};

// Trains the config's score phase with `ocm train`'s own code for warmup + steps steps (under
// mpirun: on every rank) and prints one JSON line on rank 0: the median step time, global
// images/s, data-wait share, all-reduce time and peak device memory of the timed steps.
void run_train_bench(const TrainBenchOptions& options, std::ostream& out);

}  // namespace ocm::bench
