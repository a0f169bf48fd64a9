#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <torch/torch.h>

#include "common/error.h"
#include "common/seeding.h"

namespace ocm::data {

Loader::Loader(const Dataset& dataset, const GlobalBatchSampler& sampler, LoaderOptions options)
    : dataset_(dataset),
      sampler_(sampler),
      options_(std::move(options)),
      pin_memory_(options_.pin_memory && torch::cuda::is_available()),
      next_step_(options_.start_step) {
  if (options_.threads < 1 || options_.queue_depth < 1) {
    throw UserError("loader", "needs at least one thread and a queue depth of one",
                    "positive settings");
  }
  dataset_.size(options_.split);  // an unknown split fails here, not in a worker
  sampler_.positions(options_.start_step, options_.rank, options_.world);  // checks the division
  for (int w = 0; w < options_.threads; ++w)
    workers_.emplace_back(&Loader::work, this, w);
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& worker : workers_)
    worker.join();
}

void Loader::work(int worker) {
  for (int64_t step = options_.start_step + worker;; step += options_.threads) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || step < next_step_ + options_.queue_depth; });
      if (stopping_)
        return;
    }
    try {
      Batch batch = build(step);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(step, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_)
        error_ = std::current_exception();
      stopping_ = true;
    }
    changed_.notify_all();
  }
}

Batch Loader::next() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return error_ || ready_.count(next_step_) > 0; });
  if (error_)
    std::rethrow_exception(error_);
  Batch batch = std::move(ready_.at(next_step_));
  ready_.erase(next_step_);
  ++next_step_;
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  lock.unlock();
  changed_.notify_all();
  return batch;
}

torch::Tensor images_to_float(const torch::Tensor& images) {
  return images.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(127.5).sub_(1);
}

torch::Tensor read_elements(const Dataset& dataset, const std::string& split,
                            const std::vector<int64_t>& indices) {
  const Manifest& m = dataset.manifest();
  std::vector<int64_t> shape = {static_cast<int64_t>(indices.size())};
  shape.insert(shape.end(), m.element_shape.begin(), m.element_shape.end());
  torch::Tensor raw = torch::empty(shape, m.kind == "images" ? torch::kUInt8 : torch::kFloat32);
  dataset.read(split, indices, raw.data_ptr(), nullptr);
  return raw;
}

torch::Tensor read_model_input(const Dataset& dataset, const std::string& split,
                               const std::vector<int64_t>& indices, const torch::Device& device) {
  const torch::Tensor raw = read_elements(dataset, split, indices);
  return (dataset.manifest().kind == "images" ? images_to_float(raw) : raw).to(device);
}

Batch Loader::build(int64_t step) const {
  const Manifest& m = dataset_.manifest();
  Batch batch;
  batch.step = step;
  batch.positions = sampler_.positions(step, options_.rank, options_.world);
  const auto count = static_cast<int64_t>(batch.positions.size());
  std::vector<int64_t> indices(count);
  for (int64_t i = 0; i < count; ++i)
    indices[i] = sampler_.index_at(batch.positions[i]);

  std::vector<int64_t> shape = {count};
  shape.insert(shape.end(), m.element_shape.begin(), m.element_shape.end());
  const auto host = torch::TensorOptions().pinned_memory(pin_memory_);
  torch::Tensor labels;
  if (m.has_labels)
    labels = torch::empty({count}, host.dtype(torch::kInt64));
  int64_t* label_data = m.has_labels ? labels.data_ptr<int64_t>() : nullptr;

  if (m.kind == "arrays") {
    batch.data = torch::empty(shape, host.dtype(torch::kFloat32));
    dataset_.read(options_.split, indices, batch.data.data_ptr<float>(), label_data);
    batch.labels = labels;
    return batch;
  }
  torch::Tensor raw = torch::empty(shape, torch::dtype(torch::kUInt8));
  dataset_.read(options_.split, indices, raw.data_ptr<uint8_t>(), label_data);
  if (options_.horizontal_flip) {
    const int64_t height = m.element_shape[0], width = m.element_shape[1],
                  channels = m.element_shape[2];
    uint8_t* data = raw.data_ptr<uint8_t>();
    for (int64_t i = 0; i < count; ++i) {
      RandomStream coin(derive_seed({static_cast<uint64_t>(RandomPurpose::kAugmentation),
                                     options_.seed, static_cast<uint64_t>(batch.positions[i])}));
      if ((coin.next() & 1) == 0)
        continue;
      for (int64_t y = 0; y < height; ++y) {
        uint8_t* row = data + (i * height + y) * width * channels;
        for (int64_t x = 0; x < width / 2; ++x) {
          std::swap_ranges(row + x * channels, row + (x + 1) * channels,
                           row + (width - 1 - x) * channels);
        }
      }
    }
  }
  batch.data = torch::empty({count, m.element_shape[2], m.element_shape[0], m.element_shape[1]},
                            host.dtype(torch::kFloat32));
  batch.data.copy_(images_to_float(raw));
  batch.labels = labels;
  return batch;
}

}  // namespace ocm::data
