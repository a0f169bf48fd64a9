// Checkpoints written while training goes on (Note [asynchronous checkpoints]).
#pragma once

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>

#include <torch/types.h>

#include "checkpoints/checkpoint.h"
#include "checkpoints/image.h"
#include "common/clock.h"

namespace ocm::checkpoints {

// Note [asynchronous checkpoints]
// A checkpoint of the 121M-parameter ImageNet-64 network with its EMA and Adam moments is 2 GB;
// written on the training thread it stopped every rank for seconds. Now the training thread only
// copies the state: on the CPU straight into the checkpoint's file image (Note [checkpoint
// image]), which the background thread laid out after the previous write; from a GPU into
// pinned host buffers, reused from one checkpoint to the next, which the background thread copies
// into the image. Sealing the image, its SHA-256, the write, fsync and rename of Note [atomic
// checkpoints] run on a background thread while the next steps train. At most one write is in
// flight: a checkpoint due while the previous one is still being written waits for it, and the
// log says so, because the image and the buffers are the previous write's until it ends. A write
// that failed is rethrown on the training thread at its next step. A stop request and the end of
// a run wait for the write in flight; a kill leaves it half done, which Note [atomic checkpoints]
// makes harmless: the newest checkpoint with a manifest is then the previous one.
class BackgroundWriter {
 public:
  BackgroundWriter() = default;
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;
  // Waits for a write in flight; its error is logged, since a destructor cannot throw it.
  ~BackgroundWriter();

  // Waits for the write in flight, copies the tensors of `checkpoint` into its image (Note
  // [checkpoint image]) and starts writing it into `dir` in the background. Returns the seconds
  // the caller was held: the wait plus the copy, plus laying out the image when none waits for
  // these names, shapes and dtypes (the first checkpoint, a phase change, after a failed write).
  // The wait covers the layout of the next image, which follows each write. `before_write` runs
  // on the background thread first (the trainer's fault injection holds a write back with it).
  double save(const std::string& dir, Checkpoint checkpoint, const Retention& retention,
              std::function<void()> before_write = {});

  // Logs a finished write or rethrows its error; returns at once while one is in flight.
  void poll();
  // Blocks until no write is in flight, logging that it waits; rethrows a write's error.
  void wait();
  bool in_flight() const { return pending_.valid(); }
  // The seconds the last finished write took, from save() returning to its checkpoint being
  // complete (the next image's layout, which follows, not counted).
  double last_write_seconds() const { return last_write_seconds_; }

 private:
  // What a background write leaves: the file, and the next image laid out for the same tensors.
  struct Written {
    std::string path;
    double seconds = 0;  // from save() returning to the checkpoint being complete
    std::unique_ptr<CheckpointImage> next;
  };

  // The image for `tensors`: the one laid out after the last write when it fits, else a new one.
  std::unique_ptr<CheckpointImage> image_for(const std::map<std::string, torch::Tensor>& tensors);
  // The background half of save(): fills `image` from staged tensors, writes it, and lays out
  // the next image for the same tensors.
  static Written write(std::string dir, Retention retention, std::function<void()> before_write,
                       Checkpoint checkpoint, std::unique_ptr<CheckpointImage> image,
                       ImageArena& arena, Clock::time_point since);
  // `tensors` copied from a GPU into pinned buffers_; returns the copies.
  std::map<std::string, torch::Tensor> stage(const std::map<std::string, torch::Tensor>& tensors);
  void finish();

  ImageArena arena_;  // outlives the images built in it
  std::unique_ptr<CheckpointImage> prepared_;
  std::map<std::string, torch::Tensor> buffers_;
  std::future<Written> pending_;
  int64_t pending_step_ = 0;
  double pending_megabytes_ = 0;
  Clock::time_point pending_since_;
  double last_write_seconds_ = 0;
};

}  // namespace ocm::checkpoints
