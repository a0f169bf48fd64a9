#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace ocm::checkpoints {

constexpr int64_t kFormatVersion = 1;

// Everything a run needs to continue exactly: tensors under clear names ("model/...",
// "ema/...", "optimizer/...") and the position of the run.
struct Checkpoint {
  int64_t step = 0;
  std::string phase;        // "score" or "ocm"
  std::string config_hash;  // what resume compares to refuse an incompatible config
  std::string config_yaml;  // the resolved config that wrote it, to name what differs
  int64_t world_size = 1;
  std::map<std::string, torch::Tensor> tensors;
};

struct Retention {
  int64_t keep_last = 3;            // the newest N checkpoints
  int64_t keep_every = 0;           // and every checkpoint whose step is a multiple of M (0: none)
  std::vector<int64_t> keep_steps;  // and these (the trainer: the end of the score phase)
};

// Note [atomic checkpoints]
// A checkpoint is <dir>/ckpt-<step>.h5 plus its manifest <dir>/ckpt-<step>.json (file name,
// size, sha256, step). The HDF5 file is written through files::write_atomically (Note [atomic
// write]: a temporary name, fsync, rename, fsync of the directory); then the manifest the same
// way; then <dir>/latest is replaced the same way to name it; then retention prunes older ones,
// manifest first. A crash at any instant therefore leaves either the previous complete
// checkpoint as the newest one with a manifest, or the new one complete: a file without a
// verified manifest is never loaded.

// <dir>/ckpt-<step, 10 digits>.h5
std::string checkpoint_path(const std::string& dir, int64_t step);

// Writes the checkpoint into `dir` (created if needed) and returns its path.
std::string save_checkpoint(const std::string& dir, const Checkpoint& checkpoint,
                            const Retention& retention);

// Reads a checkpoint file, verifying it against its manifest first. Throws UserError naming
// the file and what is wrong (no manifest, checksum, structure).
Checkpoint load_checkpoint(const std::string& path);

// The checkpoint in an HDF5 file, without the manifest check that load_checkpoint makes first.
// HDF5 itself is not hardened against damaged files, so that check stands between it and any
// file that was not written whole: only verified files (and the fuzz harness, which reaches the
// parser this way) come here.
Checkpoint read_checkpoint_file(const std::string& path);

// The newest checkpoint in `dir` that verifies. A damaged newer one is reported with a warning
// and skipped. Nothing when the directory holds no valid checkpoint.
struct Found {
  std::string path;
  Checkpoint checkpoint;
};
std::optional<Found> load_newest_valid(const std::string& dir);

}  // namespace ocm::checkpoints
