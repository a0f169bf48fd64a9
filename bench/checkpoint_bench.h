#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace ocm::bench {

struct CheckpointBenchOptions {
  std::string dir;  // where the files go (the run directory's file system); default $TMPDIR
  int64_t megabytes = 256;
  int repeats = 3;
};

// Median MB/s of save_checkpoint (HDF5 write, fsync, SHA-256, manifest, rename) and of
// load_checkpoint (verify, read) for float32 tensors of the given total size, against
// `dd ... conv=fsync` writing the same bytes to the same directory.
void run_checkpoint_bench(const CheckpointBenchOptions& options, std::ostream& out);

}  // namespace ocm::bench
