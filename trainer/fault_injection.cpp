#include "trainer/fault_injection.h"

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/error.h"

namespace ocm::trainer {

bool Fault::inject(int rank_now, int64_t step_now) const {
  if (kind.empty() || rank_now != rank || step_now != step)
    return false;
  if (kind == "throw")
    throw std::runtime_error("injected fault (OCM_FAULT) at step " + std::to_string(step));
  if (kind == "stall") {
    spdlog::warn("injected stall (OCM_FAULT) at step {}", step);
    for (;;)
      std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return kind == "nan";
}

std::function<void()> Fault::write_hook(int rank_now, int64_t completed_steps) const {
  if (kind != "slow_write" || rank_now != rank || completed_steps != step)
    return {};
  return [step = step] {
    spdlog::warn("injected slow write (OCM_FAULT) of the checkpoint of step {}", step);
    std::this_thread::sleep_for(std::chrono::seconds(kSlowWriteSeconds));
  };
}

Fault fault_from_environment() {
  const char* text = std::getenv("OCM_FAULT");
  if (text == nullptr || *text == '\0')
    return {};
  Fault fault;
  std::stringstream in(text);
  std::string rank, step;
  if (!std::getline(in, fault.kind, ':') || !std::getline(in, rank, ':') ||
      !std::getline(in, step) ||
      (fault.kind != "throw" && fault.kind != "stall" && fault.kind != "nan" &&
       fault.kind != "slow_write")) {
    throw UserError(
        "OCM_FAULT", std::string("is `") + text + "`",
        "KIND:RANK:STEP with KIND throw, stall, nan or slow_write (a testing aid; unset it)");
  }
  try {
    fault.rank = std::stoi(rank);
    fault.step = std::stoll(step);
  } catch (const std::exception&) {
    throw UserError("OCM_FAULT", std::string("is `") + text + "`", "integer RANK and STEP");
  }
  return fault;
}

}  // namespace ocm::trainer
