#include "common/log.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/files.h"
#include "common/text.h"

namespace ocm {
namespace {

std::atomic<int64_t> current_step{-1};

class StepFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const int64_t step = current_step.load(std::memory_order_relaxed);
    if (step < 0)
      return;
    const std::string text = " [step " + std::to_string(step) + "]";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<StepFlag>();
  }
};

const std::vector<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};

}  // namespace

std::string effective_log_level(const std::string& configured) {
  const char* env = std::getenv("OCM_LOG_LEVEL");
  const std::string level = env != nullptr && *env != '\0' ? env : configured;
  if (std::find(kLevels.begin(), kLevels.end(), level) == kLevels.end()) {
    const std::string where =
        env != nullptr && *env != '\0' ? "environment variable OCM_LOG_LEVEL" : "log.level";
    const std::string guess = closest_match(level, kLevels);
    throw UserError(where, "unknown log level `" + level + "`", join_alternatives(kLevels),
                    guess.empty() ? "" : "Did you mean `" + guess + "`?");
  }
  return level;
}

void init_logging(const LogSetup& setup) {
  const std::string level = effective_log_level(setup.level);
  std::vector<spdlog::sink_ptr> sinks;
  if (setup.rank == 0)
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!setup.rank_file_dir.empty()) {
    const std::string path =
        files::join(setup.rank_file_dir, "rank-" + std::to_string(setup.rank) + ".log");
    const std::string error = files::create_directories(setup.rank_file_dir);
    if (!error.empty()) {
      throw UserError(setup.rank_file_dir, "cannot be created (" + error + ")",
                      "a writable run directory (run.dir)");
    }
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
    } catch (const spdlog::spdlog_ex& e) {
      throw UserError(path, "cannot open the log file (" + std::string(e.what()) + ")",
                      "a writable run directory");
    }
  }
  auto logger = std::make_shared<spdlog::logger>("ocm", sinks.begin(), sinks.end());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<StepFlag>('K').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] [rank " +
                                                 std::to_string(setup.rank) + "]%K %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_step(int64_t step) {
  current_step.store(step, std::memory_order_relaxed);
}

}  // namespace ocm
