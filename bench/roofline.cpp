#include "bench/roofline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <ATen/record_function.h>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace ocm::bench {
namespace {

// Note [model FLOPs]
// MFU counts the multiply-adds of matrix products and convolutions, 2 FLOPs each: the work that
// a matmul ceiling measures. Normalisations, activations, softmax and the optimizer are left
// out, as in the usual definition of MFU. The count comes from the operators a forward pass
// dispatches (at::RecordFunction callbacks on this thread) and their tensors' shapes, so it
// follows the network as built, not a table; an operator that runs inside another counted one
// (a convolution that a backend computes as a matrix product) is counted once, as the outer
// one. A training step costs three forwards' worth: the forward and, per layer, the backward's
// products for the input's and for the weight's gradient.
struct Counter {
  double flops = 0;
  int depth = 0;  // counted operators now running on this thread
};
thread_local Counter* active = nullptr;

double elements(const c10::IValue& value) {
  return static_cast<double>(value.toTensor().numel());
}

double dim_size(const c10::IValue& value, int64_t dim) {
  return static_cast<double>(value.toTensor().size(dim));
}

bool named(const at::RecordFunction& fn, const char* name) {
  return std::strcmp(fn.name(), name) == 0;
}

bool is_counted(const at::RecordFunction& fn) {
  for (const char* name : {"aten::convolution", "aten::_convolution", "aten::mm", "aten::addmm",
                           "aten::bmm", "aten::baddbmm"}) {
    if (named(fn, name))
      return true;
  }
  return false;
}

// FLOPs of a counted operator that has just run, from its inputs' and output's shapes.
double operator_flops(const at::RecordFunction& fn) {
  const auto in = fn.inputs();
  if (named(fn, "aten::convolution") || named(fn, "aten::_convolution")) {
    // Each output element (input element, when transposed) takes one multiply-add per weight of
    // its group: weight.numel() / weight.size(0) of them.
    const double per_element = elements(in[1]) / dim_size(in[1], 0);
    return 2 * per_element * (in[6].toBool() ? elements(in[0]) : elements(fn.outputs()[0]));
  }
  const bool plain = named(fn, "aten::mm") || named(fn, "aten::bmm");  // else addmm, baddbmm
  const auto& a = in[plain ? 0 : 1];
  const auto& b = in[plain ? 1 : 2];
  const int64_t batch_dims = a.toTensor().dim() - 2;  // bmm's batch, or none
  const double batch = batch_dims == 1 ? dim_size(a, 0) : 1;
  return 2 * batch * dim_size(a, batch_dims) * dim_size(a, batch_dims + 1) *
         dim_size(b, batch_dims + 1);
}

// What on_start hands on_end: whether this operator is the outermost counted one running.
struct Counted : at::ObserverContext {
  explicit Counted(bool outer) : outer(outer) {}
  bool outer;
};

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (active == nullptr || !is_counted(fn))
    return nullptr;
  return std::make_unique<Counted>(active->depth++ == 0);
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* context) {
  if (active == nullptr || context == nullptr)
    return;
  --active->depth;
  if (static_cast<Counted*>(context)->outer)
    active->flops += operator_flops(fn);
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda())
    torch::cuda::synchronize(device.index());
}

// Median seconds of `repeats` calls of `work`, after two untimed ones.
double median_seconds(const torch::Device& device, int repeats, const std::function<void()>& work) {
  std::vector<double> seconds;
  for (int i = 0; i < repeats + 2; ++i) {
    synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    work();
    synchronize(device);
    if (i >= 2)
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace

double count_matmul_flops(const std::function<void()>& forward) {
  Counter counter;
  active = &counter;
  const at::CallbackHandle handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_start, on_end).needsInputs(true).needsOutputs(true));
  try {
    forward();
  } catch (...) {
    at::removeCallback(handle);
    active = nullptr;
    throw;
  }
  at::removeCallback(handle);
  active = nullptr;
  return counter.flops;
}

Ceilings measure_ceilings(const torch::Device& device, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  Ceilings c{};
  c.matmul_size = device.is_cuda() ? 8192 : 1024;
  c.copy_mib = device.is_cuda() ? 1024 : 256;
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  const torch::Tensor a = torch::randn({c.matmul_size, c.matmul_size}, options);
  const torch::Tensor b = torch::randn({c.matmul_size, c.matmul_size}, options);
  torch::Tensor product = torch::empty({c.matmul_size, c.matmul_size}, options);
  const double n = static_cast<double>(c.matmul_size);
  c.matmul_tflops =
      2 * n * n * n / median_seconds(device, 10, [&] { at::mm_out(product, a, b); }) / 1e12;
  const int64_t bytes = c.copy_mib << 20;
  const torch::Tensor source = torch::ones({bytes}, options.dtype(torch::kUInt8));
  torch::Tensor target = torch::empty_like(source);
  c.copy_gbs = 2.0 * static_cast<double>(bytes) /
               median_seconds(device, 10, [&] { target.copy_(source); }) / 1e9;
  return c;
}

}  // namespace ocm::bench
