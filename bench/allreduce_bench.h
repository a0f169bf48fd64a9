#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

namespace ocm::bench {

struct AllreduceBenchOptions {
  std::vector<int64_t> sizes_kib = {64, 256, 1024, 4096, 16384, 65536};
  int repeats = 20;
};

// Under mpirun: per message size, the bus bandwidth of a raw blocking MPI_Allreduce and of the
// communicator's sum (what the gradient reducer issues per bucket). Rank 0
// prints one JSON line per size; medians over `repeats`.
void run_allreduce_bench(const AllreduceBenchOptions& options, std::ostream& out);

}  // namespace ocm::bench
