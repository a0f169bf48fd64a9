#include "diffusion/random.h"

#include <cmath>

#include <torch/torch.h>

namespace ocm::diffusion {

SampleRandom::SampleRandom(uint64_t seed, RandomPurpose purpose,
                           const std::vector<int64_t>& indices, uint64_t extra) {
  streams_.reserve(indices.size());
  for (const int64_t index : indices) {
    streams_.emplace_back(
        derive_seed({static_cast<uint64_t>(purpose), seed, extra, static_cast<uint64_t>(index)}));
  }
}

torch::Tensor to_device_nonblocking(const torch::Tensor& cpu, const torch::TensorOptions& options) {
  const torch::ScalarType dtype = torch::typeMetaToScalarType(options.dtype());
  if (!options.device().is_cuda())
    return cpu.to(options.device(), dtype);
  // The caching host allocator keeps the pinned block until the copy that reads it has run.
  return cpu.to(dtype).pin_memory().to(options.device(), dtype, /*non_blocking=*/true);
}

template <class Fill>
torch::Tensor SampleRandom::draw(at::IntArrayRef sample_shape, const torch::TensorOptions& options,
                                 Fill fill) {
  std::vector<int64_t> shape = {batch_size()};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  torch::Tensor out = torch::empty(shape, torch::dtype(torch::kFloat64));
  const int64_t per_sample = out.numel() / std::max<int64_t>(1, batch_size());
  double* data = out.data_ptr<double>();
  for (size_t i = 0; i < streams_.size(); ++i)
    fill(streams_[i], data + i * per_sample, per_sample);
  return to_device_nonblocking(out, options);
}

torch::Tensor SampleRandom::normal(at::IntArrayRef sample_shape,
                                   const torch::TensorOptions& options) {
  return draw(sample_shape, options, [](RandomStream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
      // Box-Muller; 1 - u keeps the logarithm finite.
      const double radius = std::sqrt(-2 * std::log(1 - stream.uniform()));
      const double angle = 2 * M_PI * stream.uniform();
      out[i] = radius * std::cos(angle);
      if (i + 1 < n)
        out[i + 1] = radius * std::sin(angle);
    }
  });
}

torch::Tensor SampleRandom::rademacher(at::IntArrayRef sample_shape,
                                       const torch::TensorOptions& options) {
  return draw(sample_shape, options, [](RandomStream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 64) {
      const uint64_t bits = stream.next();
      for (int64_t j = 0; j < 64 && i + j < n; ++j)
        out[i + j] = (bits >> j) & 1 ? 1.0 : -1.0;
    }
  });
}

torch::Tensor SampleRandom::uniform(at::IntArrayRef sample_shape,
                                    const torch::TensorOptions& options) {
  return draw(sample_shape, options, [](RandomStream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = stream.uniform();
  });
}

torch::Tensor SampleRandom::integers(int64_t low, int64_t high) {
  torch::Tensor out = torch::empty({batch_size()}, torch::dtype(torch::kInt64));
  int64_t* data = out.data_ptr<int64_t>();
  for (size_t i = 0; i < streams_.size(); ++i) {
    data[i] = low + static_cast<int64_t>(streams_[i].below(static_cast<uint64_t>(high - low)));
  }
  return out;
}

}  // namespace ocm::diffusion
