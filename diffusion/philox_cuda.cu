#include "diffusion/philox_cuda.h"

#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

namespace ocm::philox {
namespace {

constexpr int kThreads = 256;

__device__ SampleKey key_of(const DeviceSamples& samples, int64_t i) {
  const uint64_t index = samples.indices != nullptr ? static_cast<uint64_t>(samples.indices[i])
                                                    : samples.first_index + i;
  return {samples.key0, samples.key1, index, samples.extra};
}

// One thread per element, over the grid in strides: each element computes its own block, as the
// CPU loop does, so the two agree element for element.
template <class T>
__global__ void fill_kernel(Transform transform, DeviceSamples samples, int64_t per_sample,
                            T* out) {
  const int64_t total = samples.count * per_sample;
  for (int64_t flat = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; flat < total;
       flat += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const SampleKey key = key_of(samples, flat / per_sample);
    const auto e = static_cast<uint64_t>(flat % per_sample);
    const Block block = block_of(key, e / elements_per_block(transform));
    out[flat] = static_cast<T>(value_from(transform, block, e));
  }
}

__global__ void integers_kernel(DeviceSamples samples, int64_t low, uint64_t range, int64_t* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < samples.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = low + static_cast<int64_t>(below(key_of(samples, i), range));
}

int blocks_for(int64_t total) {
  constexpr int64_t kMostBlocks = 65535;  // the stride loop covers the rest
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < kMostBlocks ? (blocks > 0 ? blocks : 1) : kMostBlocks);
}

void check_launch(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess)
    throw std::runtime_error(std::string("launching ") + what + ": " + cudaGetErrorString(error));
}

template <class T>
void fill(Transform transform, const DeviceSamples& samples, int64_t per_sample, T* out,
          void* stream) {
  const int64_t total = samples.count * per_sample;
  if (total == 0)
    return;
  fill_kernel<T><<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      transform, samples, per_sample, out);
  check_launch("the Philox fill kernel");
}

}  // namespace

void fill_on_device(Transform transform, const DeviceSamples& samples, int64_t per_sample,
                    float* out, void* stream) {
  fill(transform, samples, per_sample, out, stream);
}

void fill_on_device(Transform transform, const DeviceSamples& samples, int64_t per_sample,
                    double* out, void* stream) {
  fill(transform, samples, per_sample, out, stream);
}

void integers_on_device(const DeviceSamples& samples, int64_t low, uint64_t range, int64_t* out,
                        void* stream) {
  if (samples.count == 0)
    return;
  integers_kernel<<<blocks_for(samples.count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      samples, low, range, out);
  check_launch("the Philox integers kernel");
}

}  // namespace ocm::philox
