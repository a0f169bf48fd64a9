#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ocm::bench {

struct ReducerBenchOptions {
  std::string config = "configs/gmm2d.yaml";
  std::vector<int64_t> shape = {2};
  int64_t batch = 256;  // per rank
  int iterations = 20;
  int64_t bucket_bytes = 4 << 20;
};

// Under mpirun: median milliseconds of a score-phase backward alone, of backward with the
// gradient reducer (communication overlapping backward), and of backward followed by one
// blocking all-reduce of all gradients; the share of communication hidden behind backward is
// (sequential - overlapped) / (sequential - backward alone). Rank 0 prints one JSON line.
void run_reducer_bench(const ReducerBenchOptions& options, std::ostream& out);

}  // namespace ocm::bench
