#include "dist/reducer.h"

#include <stdexcept>
#include <string>

#include <torch/torch.h>

namespace ocm::dist {

struct GradientReducer::Bucket {
  torch::Tensor buffer;  // flat, float32
  std::vector<size_t> parameters;
  size_t ready = 0;
  std::unique_ptr<Work> work;
};

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters, Communicator& communicator,
                                 int64_t bucket_bytes)
    : parameters_(std::move(parameters)), communicator_(communicator) {
  slot_.resize(parameters_.size());
  arrivals_.assign(parameters_.size(), 0);
  int64_t bucket_elements = 0;
  std::vector<std::pair<size_t, int64_t>> current;
  auto close_bucket = [&] {
    if (current.empty())
      return;
    auto bucket = std::make_unique<Bucket>();
    bucket->buffer =
        torch::zeros({bucket_elements}, parameters_.front().options().dtype(torch::kFloat32));
    for (const auto& [index, offset] : current) {
      bucket->parameters.push_back(index);
      slot_[index] = {buckets_.size(), offset};
    }
    buckets_.push_back(std::move(bucket));
    current.clear();
    bucket_elements = 0;
  };
  for (size_t i = parameters_.size(); i-- > 0;) {
    const torch::Tensor& p = parameters_[i];
    if (p.scalar_type() != torch::kFloat32)
      throw std::logic_error("the reducer takes float32 parameters");
    if (bucket_elements > 0 && (bucket_elements + p.numel()) * 4 > bucket_bytes)
      close_bucket();
    current.emplace_back(i, bucket_elements);
    bucket_elements += p.numel();
  }
  close_bucket();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    parameters_[i].register_hook([this, i](const torch::Tensor& gradient) {
      on_gradient(i, gradient);
      return gradient;
    });
  }
}

GradientReducer::~GradientReducer() = default;

size_t GradientReducer::bucket_count() const {
  return buckets_.size();
}

void GradientReducer::on_gradient(size_t parameter, const torch::Tensor& gradient) {
  if (accumulating_)
    return;
  if (++arrivals_[parameter] > 1)
    return;  // reported by finish()
  const auto [bucket_index, offset] = slot_[parameter];
  Bucket& bucket = *buckets_[bucket_index];
  const torch::Tensor& p = parameters_[parameter];
  const int64_t n = p.numel();
  torch::Tensor slot = bucket.buffer.narrow(0, offset, n);
  if (p.grad().defined()) {
    torch::add_out(slot, p.grad().detach().reshape({n}), gradient.detach().reshape({n}));
  } else {
    slot.copy_(gradient.detach().reshape({n}));
  }
  if (++bucket.ready == bucket.parameters.size())
    bucket.work = communicator_.sum_async(bucket.buffer);
}

void GradientReducer::finish() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (arrivals_[i] != 1) {
      throw std::logic_error("parameter " + std::to_string(i) + " received " +
                             std::to_string(arrivals_[i]) +
                             " gradients in one backward; the reducer needs exactly one");
    }
  }
  const torch::Tensor scale =
      torch::scalar_tensor(1.0 / communicator_.world_size(), torch::kFloat32);
  for (auto& bucket : buckets_) {
    bucket->work->wait();
    for (const size_t index : bucket->parameters) {
      torch::Tensor& p = parameters_[index];
      const torch::Tensor summed =
          bucket->buffer.narrow(0, slot_[index].second, p.numel()).view(p.sizes());
      // The average, in the copy's one pass, into a gradient laid out like its parameter.
      if (!p.grad().defined())
        p.mutable_grad() = torch::empty_like(p);
      torch::mul_out(p.mutable_grad(), summed, scale);
    }
    bucket->ready = 0;
    bucket->work.reset();
  }
  std::fill(arrivals_.begin(), arrivals_.end(), 0);
}

}  // namespace ocm::dist
