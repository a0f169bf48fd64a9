#include "trainer/metrics.h"

#include <cerrno>
#include <cstring>

#include <sys/resource.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "ocm/build_info.h"

#if OCM_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ocm::trainer {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_)
    throw UserError(path, "cannot be opened for appending", "a writable run directory");
}

double peak_host_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

double peak_device_mib(const torch::Device& device) {
#if OCM_HAVE_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1 << 20);  // [0]: all pools
  }
#endif
  (void)device;
  return 0;
}

namespace {

std::string duration_text(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60));
  else
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  return text;
}

}  // namespace

void MetricsLog::write(const MetricsLine& line) {
  const Interval& i = line.interval;
  const double steps = static_cast<double>(std::max<int64_t>(1, i.steps));
  const double seconds = std::max(i.seconds, 1e-9);
  const nlohmann::json record = {{"step", line.step},
                                 {"phase", line.phase},
                                 {"loss", i.loss_sum / steps},
                                 {"grad_norm", i.last_grad_norm},
                                 {"lr", line.lr},
                                 {"img_per_s", static_cast<double>(i.samples) / seconds},
                                 {"data_wait_pct", 100.0 * i.wait_seconds / seconds},
                                 {"allreduce_ms", 1000.0 * i.reduce_seconds / steps},
                                 {"step_ms", 1000.0 * seconds / steps},
                                 {"peak_host_mb", peak_host_mib()},
                                 {"peak_device_mb", peak_device_mib(line.device)},
                                 {"skipped", line.skipped}};
  errno = 0;
  out_ << record.dump() << "\n";
  out_.flush();
  if (!out_) {
    throw UserError(path_,
                    std::string("could not be written (") +
                        (errno != 0 ? std::strerror(errno) : "the stream failed") + ")",
                    "free disk space and a writable run directory");
  }
  const double eta = seconds / steps * static_cast<double>(line.phase_steps - line.phase_step);
  spdlog::info("{} {}/{}  loss {:.4f}  grad {:.3f}  lr {:.2e}  {:.0f} img/s  wait {:.0f}%  ETA {}",
               line.phase, line.phase_step, line.phase_steps, i.loss_sum / steps, i.last_grad_norm,
               line.lr, static_cast<double>(i.samples) / seconds, 100.0 * i.wait_seconds / seconds,
               duration_text(eta));
}

}  // namespace ocm::trainer
