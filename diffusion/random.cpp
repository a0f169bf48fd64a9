#include "diffusion/random.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#include "ocm/build_info.h"
#if OCM_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "diffusion/philox_cuda.h"
#endif

namespace ocm::diffusion {

std::string generator_name(Generator generator) {
  return generator == Generator::kPhilox ? "philox" : "stream";
}

Generator generator_named(const std::string& name) {
  if (name == "philox")
    return Generator::kPhilox;
  if (name == "stream")
    return Generator::kStream;
  throw std::invalid_argument("unknown random generator '" + name + "' (philox or stream)");
}

SampleRandom::SampleRandom(uint64_t seed, RandomPurpose purpose,
                           const std::vector<int64_t>& indices, uint64_t extra, Generator generator)
    : generator_(generator), seed_(seed), purpose_(purpose), extra_(extra), indices_(indices) {
  if (generator_ == Generator::kPhilox) {
    if (extra > UINT32_MAX)
      throw std::invalid_argument("philox draws count steps below 2^32, not " +
                                  std::to_string(extra));
    return;
  }
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

namespace {

// The key of a sample's next philox draw; the counter adds the element's block.
struct PhiloxDraw {
  uint32_t key0;
  uint32_t key1;
  uint32_t extra;
};

PhiloxDraw philox_draw(RandomPurpose purpose, uint64_t seed, uint64_t draw, uint64_t extra) {
  const uint64_t key = derive_seed({static_cast<uint64_t>(purpose), seed, 0x7068696c6f78ULL, draw});
  return {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32),
          static_cast<uint32_t>(extra)};
}

philox::SampleKey key_of(const PhiloxDraw& draw, int64_t index) {
  return {draw.key0, draw.key1, static_cast<uint64_t>(index), draw.extra};
}

template <class T>
void fill_on_host(philox::Transform transform, const PhiloxDraw& draw,
                  const std::vector<int64_t>& indices, int64_t per_sample, T* out) {
  at::parallel_for(0, static_cast<int64_t>(indices.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const philox::SampleKey key = key_of(draw, indices[i]);
      const int64_t run = philox::elements_per_block(transform);
      for (int64_t first = 0; first < per_sample; first += run) {
        const philox::Block block = block_of(key, static_cast<uint64_t>(first / run));
        for (int64_t e = first; e < std::min(first + run, per_sample); ++e)
          out[i * per_sample + e] = static_cast<T>(value_from(transform, block, e));
      }
    }
  });
}

#if OCM_HAVE_CUDA
// The indices as the kernels take them: a first index when they are consecutive (every training
// step's share), else a copy on the device.
philox::DeviceSamples device_samples(const PhiloxDraw& draw, const std::vector<int64_t>& indices,
                                     const torch::Device& device, torch::Tensor& holder) {
  bool consecutive = true;
  for (size_t i = 1; i < indices.size() && consecutive; ++i)
    consecutive = indices[i] == indices[0] + static_cast<int64_t>(i);
  philox::DeviceSamples samples{static_cast<int64_t>(indices.size()),
                                nullptr,
                                indices.empty() ? 0 : static_cast<uint64_t>(indices[0]),
                                draw.key0,
                                draw.key1,
                                draw.extra};
  if (!consecutive) {
    holder = to_device_nonblocking(torch::tensor(indices, torch::kInt64),
                                   torch::TensorOptions().device(device).dtype(torch::kInt64));
    samples.indices = holder.data_ptr<int64_t>();
  }
  return samples;
}

void* current_stream(const torch::Device& device) {
  return at::cuda::getCurrentCUDAStream(device.index()).stream();
}
#endif

}  // namespace

torch::Tensor SampleRandom::draw_philox(philox::Transform transform, at::IntArrayRef sample_shape,
                                        const torch::TensorOptions& options) {
  std::vector<int64_t> shape = {batch_size()};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  const torch::ScalarType dtype = torch::typeMetaToScalarType(options.dtype());
  const torch::ScalarType fill_dtype = dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  torch::Tensor out = torch::empty(shape, options.dtype(fill_dtype));
  const int64_t per_sample = out.numel() / std::max<int64_t>(1, batch_size());
  const PhiloxDraw draw = philox_draw(purpose_, seed_, draws_++, extra_);
  if (out.is_cuda()) {
#if OCM_HAVE_CUDA
    torch::Tensor holder;
    const philox::DeviceSamples samples = device_samples(draw, indices_, out.device(), holder);
    if (fill_dtype == torch::kFloat64)
      philox::fill_on_device(transform, samples, per_sample, out.data_ptr<double>(),
                             current_stream(out.device()));
    else
      philox::fill_on_device(transform, samples, per_sample, out.data_ptr<float>(),
                             current_stream(out.device()));
#else
    throw std::logic_error("philox draws on a CUDA device need a CUDA build of ocm");
#endif
  } else if (fill_dtype == torch::kFloat64) {
    fill_on_host(transform, draw, indices_, per_sample, out.data_ptr<double>());
  } else {
    fill_on_host(transform, draw, indices_, per_sample, out.data_ptr<float>());
  }
  return dtype == fill_dtype ? out : out.to(dtype);
}

template <class Fill>
torch::Tensor SampleRandom::draw_stream(at::IntArrayRef sample_shape,
                                        const torch::TensorOptions& options, Fill fill) {
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
  if (generator_ == Generator::kPhilox)
    return draw_philox(philox::Transform::kNormal, sample_shape, options);
  return draw_stream(sample_shape, options, [](RandomStream& stream, double* out, int64_t n) {
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
  if (generator_ == Generator::kPhilox)
    return draw_philox(philox::Transform::kRademacher, sample_shape, options);
  return draw_stream(sample_shape, options, [](RandomStream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 64) {
      const uint64_t bits = stream.next();
      for (int64_t j = 0; j < 64 && i + j < n; ++j)
        out[i + j] = (bits >> j) & 1 ? 1.0 : -1.0;
    }
  });
}

torch::Tensor SampleRandom::uniform(at::IntArrayRef sample_shape,
                                    const torch::TensorOptions& options) {
  if (generator_ == Generator::kPhilox)
    return draw_philox(philox::Transform::kUniform, sample_shape, options);
  return draw_stream(sample_shape, options, [](RandomStream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = stream.uniform();
  });
}

torch::Tensor SampleRandom::integers(int64_t low, int64_t high, const torch::Device& device) {
  const auto range = static_cast<uint64_t>(high - low);
  const torch::TensorOptions options = torch::TensorOptions().dtype(torch::kInt64);
  if (generator_ == Generator::kPhilox && device.is_cuda()) {
#if OCM_HAVE_CUDA
    torch::Tensor out = torch::empty({batch_size()}, options.device(device));
    torch::Tensor holder;
    const PhiloxDraw draw = philox_draw(purpose_, seed_, draws_++, extra_);
    philox::integers_on_device(device_samples(draw, indices_, device, holder), low, range,
                               out.data_ptr<int64_t>(), current_stream(device));
    return out;
#else
    throw std::logic_error("philox draws on a CUDA device need a CUDA build of ocm");
#endif
  }
  torch::Tensor out = torch::empty({batch_size()}, options);
  int64_t* data = out.data_ptr<int64_t>();
  if (generator_ == Generator::kPhilox) {
    const PhiloxDraw draw = philox_draw(purpose_, seed_, draws_++, extra_);
    for (int64_t i = 0; i < batch_size(); ++i)
      data[i] = low + static_cast<int64_t>(philox::below(key_of(draw, indices_[i]), range));
  } else {
    for (size_t i = 0; i < streams_.size(); ++i)
      data[i] = low + static_cast<int64_t>(streams_[i].below(range));
  }
  return to_device_nonblocking(out, options.device(device));
}

}  // namespace ocm::diffusion
