#include "checkpoints/background_writer.h"

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

std::map<std::string, torch::Tensor> BackgroundWriter::stage(
    const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, torch::Tensor> staged;
  bool from_gpu = false;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor& buffer = buffers_[name];
    if (!same_layout(buffer, tensor)) {
      buffer = torch::empty(
          tensor.sizes(),
          torch::TensorOptions().dtype(tensor.scalar_type()).pinned_memory(tensor.is_cuda()));
    }
    buffer.copy_(tensor.detach(), /*non_blocking=*/tensor.is_cuda());
    from_gpu = from_gpu || tensor.is_cuda();
    staged.emplace(name, buffer);
  }
  if (from_gpu)
    torch::cuda::synchronize();
  // A phase change renames the state: buffers of names no longer saved are freed.
  for (auto it = buffers_.begin(); it != buffers_.end();)
    it = tensors.count(it->first) != 0 ? std::next(it) : buffers_.erase(it);
  return staged;
}

double BackgroundWriter::save(const std::string& dir, Checkpoint checkpoint,
                              const Retention& retention, std::function<void()> before_write) {
  const auto start = Clock::now();
  wait();
  checkpoint.tensors = stage(checkpoint.tensors);
  double bytes = 0;
  for (const auto& [name, tensor] : checkpoint.tensors)
    bytes += static_cast<double>(tensor.nbytes());
  pending_step_ = checkpoint.step;
  pending_megabytes_ = bytes / 1e6;
  pending_since_ = Clock::now();
  pending_ = std::async(std::launch::async, [dir, retention, before_write = std::move(before_write),
                                             checkpoint = std::move(checkpoint)] {
    if (before_write)
      before_write();
    return save_checkpoint(dir, checkpoint, retention);
  });
  return seconds_since(start);
}

void BackgroundWriter::finish() {
  // Reset before get() rethrows, so that a failed write is reported once.
  std::future<std::string> done = std::move(pending_);
  const std::string path = done.get();
  const double seconds = seconds_since(pending_since_);
  spdlog::info("checkpoint {} written in the background in {:.2f} s ({:.0f} MB/s)", path, seconds,
               pending_megabytes_ / std::max(seconds, 1e-9));
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
