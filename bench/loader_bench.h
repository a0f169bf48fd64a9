#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ocm::bench {

struct LoaderBenchOptions {
  std::string dir = "datasets/bench";  // generated datasets are kept here and reused
  std::vector<int64_t> sizes = {28, 32, 64};
  int64_t count = 50000;  // images per generated dataset
  int64_t channels = 3;
  std::vector<int> threads = {1, 2};
  int64_t batch = 128;
  int64_t steps = 100;
  int64_t shard_bytes = 64 << 20;  // small shards, so reads cross many of them
  bool compare_layouts = false;    // also time 16 KiB chunks, 64-image chunks and gzip
};

// Generates synthetic image datasets (smooth gradients plus noise, so compression has something
// to find) and prints one JSON line per (size, layout, threads) with the loader's images/s
// measured with no trainer consuming them.
void run_loader_bench(const LoaderBenchOptions& options, std::ostream& out);

}  // namespace ocm::bench
