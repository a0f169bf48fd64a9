// What a step could reach: the model's FLOPs per sample, counted from the operators its forward
// pass runs, and the device's matrix-product and copy ceilings, measured. See Note [model FLOPs].
#pragma once

#include <functional>

#include <torch/types.h>

namespace ocm::bench {

// FLOPs of the matrix products and convolutions that `forward` dispatches on this thread.
double count_matmul_flops(const std::function<void()>& forward);

struct Ceilings {
  double matmul_tflops;  // a square matrix product in `dtype`, median of the timed repeats
  double copy_gbs;       // a device-to-device copy, bytes read plus bytes written
  int64_t matmul_size;   // n of the n x n products
  int64_t copy_mib;      // size of the copied tensor
};

// Measured on `device`: bf16 on CUDA is what autocast trains in; the CPU measures fp32.
Ceilings measure_ceilings(const torch::Device& device, torch::ScalarType dtype);

}  // namespace ocm::bench
