#include "checkpoints/background_writer.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/clock.h"

namespace ocm::checkpoints {
namespace {

bool same_layout(const torch::Tensor& buffer, const torch::Tensor& tensor) {
  return buffer.defined() && buffer.sizes() == tensor.sizes() &&
         buffer.scalar_type() == tensor.scalar_type() && buffer.is_pinned() == tensor.is_cuda();
}

}  // namespace

BackgroundWriter::~BackgroundWriter() {
  if (!pending_.valid())
    return;
  try {
    wait();
  } catch (const std::exception& e) {
    spdlog::error("checkpoint of step {} was not written: {}", pending_step_, e.what());
  }
}

std::unique_ptr<CheckpointImage> BackgroundWriter::image_for(
    const std::map<std::string, torch::Tensor>& tensors) {
  Layout layout = layout_of(tensors);
  if (prepared_ && prepared_->layout() == layout)
    return std::move(prepared_);
  prepared_.reset();  // one image at a time in the arena
  return std::make_unique<CheckpointImage>(arena_, std::move(layout));
}

std::map<std::string, torch::Tensor> BackgroundWriter::stage(
    const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, torch::Tensor> staged;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor& buffer = buffers_[name];
    if (!same_layout(buffer, tensor)) {
      buffer = torch::empty(
          tensor.sizes(),
          torch::TensorOptions().dtype(tensor.scalar_type()).pinned_memory(tensor.is_cuda()));
    }
    buffer.copy_(tensor.detach(), /*non_blocking=*/tensor.is_cuda());
    staged.emplace(name, buffer);
  }
  torch::cuda::synchronize();
  // A phase change renames the state: buffers of names no longer saved are freed.
  for (auto it = buffers_.begin(); it != buffers_.end();)
    it = tensors.count(it->first) != 0 ? std::next(it) : buffers_.erase(it);
  return staged;
}

BackgroundWriter::Written BackgroundWriter::write(std::string dir, Retention retention,
                                                  std::function<void()> before_write,
                                                  Checkpoint checkpoint,
                                                  std::unique_ptr<CheckpointImage> image,
                                                  ImageArena& arena, Clock::time_point since) {
  Written written;
  try {
    if (before_write)
      before_write();
    if (!checkpoint.tensors.empty())
      image->fill(checkpoint.tensors);
    written.path = write_checkpoint(dir, *image, checkpoint, retention);
    written.seconds = seconds_since(since);
  } catch (...) {
    image.reset();  // closed here, before the caller can lay out another image in the arena
    throw;
  }
  const Layout layout = image->layout();
  image.reset();
  try {
    written.next = std::make_unique<CheckpointImage>(arena, layout);
  } catch (const std::exception&) {
    // Nothing is lost: the next save lays its image out itself, and reports what fails.
  }
  return written;
}

double BackgroundWriter::save(const std::string& dir, Checkpoint checkpoint,
                              const Retention& retention, std::function<void()> before_write) {
  const auto start = Clock::now();
  wait();
  double bytes = 0;
  for (const auto& [name, tensor] : checkpoint.tensors)
    bytes += static_cast<double>(tensor.nbytes());
  std::unique_ptr<CheckpointImage> image = image_for(checkpoint.tensors);
  const bool from_gpu = std::any_of(checkpoint.tensors.begin(), checkpoint.tensors.end(),
                                    [](const auto& named) { return named.second.is_cuda(); });
  if (from_gpu) {
    checkpoint.tensors = stage(checkpoint.tensors);  // copied into the image in the background
  } else {
    image->fill(checkpoint.tensors);
    checkpoint.tensors.clear();
  }
  pending_step_ = checkpoint.step;
  pending_megabytes_ = bytes / 1e6;
  pending_since_ = Clock::now();
  pending_ = std::async(std::launch::async, &BackgroundWriter::write, dir, retention,
                        std::move(before_write), std::move(checkpoint), std::move(image),
                        std::ref(arena_), pending_since_);
  return seconds_since(start);
}

void BackgroundWriter::finish() {
  // Reset before get() rethrows, so that a failed write is reported once.
  std::future<Written> done = std::move(pending_);
  Written written = done.get();
  prepared_ = std::move(written.next);
  last_write_seconds_ = written.seconds;
  spdlog::info("checkpoint {} written in the background in {:.2f} s ({:.0f} MB/s)", written.path,
               written.seconds, pending_megabytes_ / std::max(written.seconds, 1e-9));
}

void BackgroundWriter::poll() {
  if (pending_.valid() && pending_.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
    finish();
}

void BackgroundWriter::wait() {
  if (!pending_.valid())
    return;
  if (pending_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    spdlog::info("waiting for the checkpoint of step {} to finish writing", pending_step_);
    pending_.wait();
  }
  finish();
}

}  // namespace ocm::checkpoints
