#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace ocm::bench {

struct CheckpointBenchOptions {
  std::string dir;  // where the files go (the run directory's file system); default $TMPDIR
  // The network's parameters; the state saved is four times as many float32 values (weights,
  // EMA and Adam's two moments). The default is improved DDPM's ImageNet-64 UNet.
  int64_t parameters = 121'000'000;
  int repeats = 3;
};

// What a checkpoint costs training (Note [asynchronous checkpoints]), over `repeats` rounds:
// the time BackgroundWriter::save holds the caller against one plain copy of the state into
// host buffers; the background write's MB/s (sealing the HDF5 image, SHA-256, write, fsync,
// manifest, rename: from save() returning to the checkpoint being complete) against
// `dd conv=fsync` writing as many bytes to the same directory, alternating; how long the
// background thread stays busy, the next image's layout included; and the verified load. One
// JSON line: each figure's median, minimum and maximum.
void run_checkpoint_bench(const CheckpointBenchOptions& options, std::ostream& out);

}  // namespace ocm::bench
