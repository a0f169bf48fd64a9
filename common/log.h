#pragma once

#include <cstdint>
#include <string>

namespace ocm {

struct LogSetup {
  std::string level = "info";  // trace, debug, info, warn, error or off; OCM_LOG_LEVEL wins
  int rank = 0;
  std::string rank_file_dir;  // when set, this rank also appends to <dir>/rank-<rank>.log
};

// Installs the process-wide spdlog logger: rank 0 writes to stderr, every rank to its file.
// Lines carry the rank, and the step once set_log_step has been called.
void init_logging(const LogSetup& setup);

// Tags later lines with the training step; a negative step removes the tag.
void set_log_step(int64_t step);

// The level to use: OCM_LOG_LEVEL when set, else `configured`. Throws UserError on a bad value.
std::string effective_log_level(const std::string& configured);

}  // namespace ocm
