#include "bench/checkpoint_bench.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "checkpoints/background_writer.h"
#include "checkpoints/checkpoint.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"

namespace ocm::bench {
namespace {

// A network's training state of `parameters` float32 values per part, in tensors of at most
// 4 MB, as the weights and moments of a UNet's convolutions are.
checkpoints::Checkpoint make_state(int64_t parameters) {
  checkpoints::Checkpoint c;
  c.phase = "score";
  constexpr int64_t kTensorValues = int64_t{1} << 20;
  for (const char* part : {"model", "ema", "optimizer/m", "optimizer/v"}) {
    for (int64_t offset = 0, i = 0; offset < parameters; offset += kTensorValues, ++i) {
      c.tensors[std::string(part) + "/tensor" + std::to_string(i)] =
          torch::randn({std::min(kTensorValues, parameters - offset)});
    }
  }
  return c;
}

nlohmann::json spread(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {{"median", values[values.size() / 2]}, {"min", values.front()}, {"max", values.back()}};
}

double dd_seconds(const std::string& target, int64_t megabytes) {
  const std::string dd = "dd if=/dev/zero of='" + target +
                         "' bs=1M count=" + std::to_string(megabytes) + " conv=fsync status=none";
  const auto start = Clock::now();
  if (std::system(dd.c_str()) != 0)
    throw UserError(files::parent(target), "dd could not write there", "a writable directory");
  const double seconds = seconds_since(start);
  ::unlink(target.c_str());
  return seconds;
}

}  // namespace

void run_checkpoint_bench(const CheckpointBenchOptions& options, std::ostream& out) {
  const std::string dir = files::join(options.dir.empty() ? files::temp_directory() : options.dir,
                                      "ocm-bench-checkpoint-" + std::to_string(getpid()));
  files::remove_tree(dir);
  files::create_directories(dir);
  // The writer logs each checkpoint; this command's output is its JSON line alone.
  const spdlog::level::level_enum level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  checkpoints::Checkpoint state = make_state(options.parameters);
  double state_bytes = 0;
  for (const auto& [name, tensor] : state.tensors)
    state_bytes += static_cast<double>(tensor.nbytes());
  std::vector<double> copy_ms, stall_ms, busy_ms, write_mb_per_s, dd_mb_per_s, load_mb_per_s;
  std::vector<torch::Tensor> host(state.tensors.size());
  checkpoints::BackgroundWriter writer;
  double file_bytes = 0;
  for (int round = 0; round < options.repeats; ++round) {
    // One plain copy of the state into buffers that already exist: the floor of any stall.
    auto start = Clock::now();
    size_t i = 0;
    for (const auto& [name, tensor] : state.tensors) {
      if (!host[i].defined())
        host[i] = torch::empty_like(tensor);
      host[i++].copy_(tensor);
    }
    copy_ms.push_back(1e3 * seconds_since(start));
    state.step = round + 1;
    stall_ms.push_back(1e3 * writer.save(dir, state, {1, 0, {}}));
    start = Clock::now();
    writer.wait();
    busy_ms.push_back(1e3 * seconds_since(start));
    const std::string path = checkpoints::checkpoint_path(dir, state.step);
    file_bytes = static_cast<double>(files::file_size(path));
    write_mb_per_s.push_back(file_bytes / 1e6 / writer.last_write_seconds());
    const auto megabytes = static_cast<int64_t>(file_bytes / (1 << 20)) + 1;
    dd_mb_per_s.push_back(megabytes * 1.048576 / dd_seconds(files::join(dir, "dd.bin"), megabytes));
    start = Clock::now();
    checkpoints::load_checkpoint(path);
    load_mb_per_s.push_back(file_bytes / 1e6 / seconds_since(start));
  }
  files::remove_tree(dir);
  spdlog::set_level(level);
  std::vector<double> stall_over_copy, write_over_dd;
  for (int r = 0; r < options.repeats; ++r) {
    stall_over_copy.push_back(stall_ms[r] / copy_ms[r]);
    write_over_dd.push_back(write_mb_per_s[r] / dd_mb_per_s[r]);
  }
  out << nlohmann::json{{"bench", "checkpoint"},
                        {"parameters", options.parameters},
                        {"state_mb", state_bytes / 1e6},
                        {"file_mb", file_bytes / 1e6},
                        {"rounds", options.repeats},
                        {"host_copy_ms", spread(copy_ms)},
                        {"stall_ms", spread(stall_ms)},
                        {"stall_over_host_copy", spread(stall_over_copy)},
                        {"background_write_mb_per_s", spread(write_mb_per_s)},
                        {"background_busy_ms", spread(busy_ms)},
                        {"dd_fsync_mb_per_s", spread(dd_mb_per_s)},
                        {"write_over_dd", spread(write_over_dd)},
                        {"load_verified_mb_per_s", spread(load_mb_per_s)}}
             .dump()
      << std::endl;
}

}  // namespace ocm::bench
