#include "bench/allreduce_bench.h"

#include <algorithm>
#include <chrono>

#include <torch/torch.h>

#include "bench/timing.h"
#include "common/error.h"
#include "dist/communicator.h"
#include "dist/topology.h"

namespace ocm::bench {
namespace {}  // namespace

void run_allreduce_bench(const AllreduceBenchOptions& options, std::ostream& out) {
  const dist::Topology& topology = dist::init_processes();
  if (topology.world_size < 2) {
    throw UserError("ocm bench allreduce", "runs in a single process", "at least 2 ranks",
                    "Run it as `mpirun -np 2 ocm bench allreduce`.");
  }
  auto communicator = dist::make_cpu_communicator();
  for (const int64_t kib : options.sizes_kib) {
    const int64_t elements = kib * 1024 / 4;
    torch::Tensor buffer = torch::ones({elements}, torch::kFloat32);
    // The raw baseline: the same all-reduce through the communicator's MPI, blocking.
    const double raw =
        median_ms(
            0, options.repeats,
            [&](int) { dist::allreduce_sum_blocking(buffer.data_ptr<float>(), elements); },
            dist::barrier) /
        1000;
    const double ours = median_ms(
                            0, options.repeats,
                            [&](int) { communicator->sum_async(buffer)->wait(); }, dist::barrier) /
                        1000;
    // Bus bandwidth: each rank sends and receives 2 (W - 1) / W of the bytes in a ring all-reduce.
    const double bytes =
        static_cast<double>(elements) * 4 * 2 * (topology.world_size - 1) / topology.world_size;
    if (topology.rank == 0) {
      out << "{\"bench\":\"allreduce\",\"ranks\":" << topology.world_size << ",\"kib\":" << kib
          << ",\"raw_gb_per_s\":" << bytes / raw / 1e9
          << ",\"communicator_gb_per_s\":" << bytes / ours / 1e9 << ",\"ratio\":" << raw / ours
          << "}\n";
      out.flush();
    }
  }
}

}  // namespace ocm::bench
