// Philox draws filled by a CUDA kernel (built only with CUDA). Free of LibTorch, so nvcc compiles
// the kernels without torch's headers; random.cpp passes the device pointers and its stream.
#pragma once

#include <cstdint>

#include "diffusion/philox.h"

namespace ocm::philox {

// Where the samples' global indices come from: `indices` (on the device) when not null, else
// first_index + i for the i-th sample.
struct DeviceSamples {
  int64_t count;
  const int64_t* indices;
  uint64_t first_index;
  uint32_t key0;
  uint32_t key1;
  uint32_t extra;
};

// out[i * per_sample + e] = transform(sample i, element e), on `stream` (a cudaStream_t).
void fill_on_device(Transform transform, const DeviceSamples& samples, int64_t per_sample,
                    float* out, void* stream);
void fill_on_device(Transform transform, const DeviceSamples& samples, int64_t per_sample,
                    double* out, void* stream);
// out[i] = low + below(sample i, range).
void integers_on_device(const DeviceSamples& samples, int64_t low, uint64_t range, int64_t* out,
                        void* stream);

}  // namespace ocm::philox
