#include "bench/checkpoint_bench.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "bench/timing.h"
#include "checkpoints/checkpoint.h"
#include "common/error.h"
#include "common/files.h"

namespace ocm::bench {

void run_checkpoint_bench(const CheckpointBenchOptions& options, std::ostream& out) {
  const std::string dir = files::join(options.dir.empty() ? files::temp_directory() : options.dir,
                                      "ocm-bench-checkpoint-" + std::to_string(getpid()));
  files::remove_tree(dir);
  files::create_directories(dir);
  // Tensors of a few MB each, as a network's parameters and optimizer moments are.
  checkpoints::Checkpoint c;
  c.phase = "score";
  const int64_t total = options.megabytes << 20;
  constexpr int64_t kTensorBytes = int64_t{4} << 20;
  for (int64_t offset = 0, i = 0; offset < total; offset += kTensorBytes, ++i) {
    const int64_t bytes = std::min(kTensorBytes, total - offset);
    c.tensors["model/tensor" + std::to_string(i)] = torch::randn({bytes / 4});
  }
  int64_t step = 0;
  const double save_ms = median_ms(0, options.repeats, [&](int) {
    c.step = ++step;
    checkpoints::save_checkpoint(dir, c, {1, 0, {}});
  });
  const std::string path = checkpoints::checkpoint_path(dir, step);
  const double load_ms =
      median_ms(0, options.repeats, [&](int) { checkpoints::load_checkpoint(path); });
  const std::string dd_target = files::join(dir, "dd.bin");
  const std::string dd = "dd if=/dev/zero of='" + dd_target +
                         "' bs=1M count=" + std::to_string(options.megabytes) +
                         " conv=fsync status=none";
  const double dd_ms = median_ms(0, options.repeats, [&](int) {
    if (std::system(dd.c_str()) != 0)
      throw UserError(dir, "dd could not write there", "a writable directory");
  });
  files::remove_tree(dir);
  const double mb = static_cast<double>(options.megabytes) * 1.048576;
  out << nlohmann::json{{"bench", "checkpoint"},
                        {"megabytes", mb},
                        {"save_mb_per_s", mb / save_ms * 1000},
                        {"load_verified_mb_per_s", mb / load_ms * 1000},
                        {"dd_fsync_mb_per_s", mb / dd_ms * 1000},
                        {"save_over_dd", dd_ms / save_ms}}
             .dump()
      << std::endl;
}

}  // namespace ocm::bench
