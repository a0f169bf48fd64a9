#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

#include <torch/types.h>

namespace ocm::trainer {

// What the trainer measures between two metric lines.
struct Interval {
  int64_t steps = 0;
  int64_t samples = 0;        // global
  double loss_sum = 0;        // of the global mean loss of each step
  double seconds = 0;         // wall time of those steps
  double wait_seconds = 0;    // of those, waiting for the data loader
  double reduce_seconds = 0;  // of those, waiting for gradient and scalar all-reduces
  double last_grad_norm = 0;
};

struct MetricsLine {
  int64_t step = 0;  // completed steps, over both phases
  std::string phase;
  int64_t phase_step = 0;
  int64_t phase_steps = 0;
  double lr = 0;
  int64_t skipped = 0;  // non-finite steps skipped so far in this run
  Interval interval;
  torch::Device device = torch::kCPU;  // where training runs
};

// Rank 0's metrics: one JSON object per line appended to <run>/metrics.jsonl (step, phase, loss,
// grad_norm, lr, img_per_s, data_wait_pct, allreduce_ms, step_ms, peak_host_mb, peak_device_mb,
// skipped), and a progress
// line with the phase's ETA on the console.
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);
  void write(const MetricsLine& line);

 private:
  std::string path_;
  std::ofstream out_;
};

// The peak resident memory of this process so far, in MiB.
double peak_host_mib();

// The most memory LibTorch's caching allocator has handed out on a CUDA `device` so far, in MiB
// (what torch.cuda.max_memory_allocated reports); 0 for the CPU.
double peak_device_mib(const torch::Device& device);

}  // namespace ocm::trainer
