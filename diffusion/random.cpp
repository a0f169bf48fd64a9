#include "diffusion/random.h"

#include <cmath>

#include <torch/torch.h>

namespace ocm::diffusion {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t rotate_left(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

uint64_t derive_seed(std::initializer_list<uint64_t> parts) {
  uint64_t state = 0x6f636d2d73656564ULL;
  for (const uint64_t part : parts)
    state = splitmix64(state ^ splitmix64(part));
  return state;
}

uint64_t SampleRandom::Stream::next() {
  const uint64_t result = rotate_left(state[1] * 5, 7) * 9;
  const uint64_t shifted = state[1] << 17;
  state[2] ^= state[0];
  state[3] ^= state[1];
  state[1] ^= state[2];
  state[0] ^= state[3];
  state[2] ^= shifted;
  state[3] = rotate_left(state[3], 45);
  return result;
}

double SampleRandom::Stream::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

SampleRandom::SampleRandom(uint64_t seed, RandomPurpose purpose,
                           const std::vector<int64_t>& indices, uint64_t extra) {
  streams_.reserve(indices.size());
  for (const int64_t index : indices) {
    uint64_t x =
        derive_seed({seed, static_cast<uint64_t>(purpose), extra, static_cast<uint64_t>(index)});
    Stream stream;
    for (auto& word : stream.state)
      word = x = splitmix64(x);
    streams_.push_back(stream);
  }
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
  return out.to(options.device(), torch::typeMetaToScalarType(options.dtype()));
}

torch::Tensor SampleRandom::normal(at::IntArrayRef sample_shape,
                                   const torch::TensorOptions& options) {
  return draw(sample_shape, options, [](Stream& stream, double* out, int64_t n) {
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
  return draw(sample_shape, options, [](Stream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 64) {
      const uint64_t bits = stream.next();
      for (int64_t j = 0; j < 64 && i + j < n; ++j)
        out[i + j] = (bits >> j) & 1 ? 1.0 : -1.0;
    }
  });
}

torch::Tensor SampleRandom::uniform(at::IntArrayRef sample_shape,
                                    const torch::TensorOptions& options) {
  return draw(sample_shape, options, [](Stream& stream, double* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = stream.uniform();
  });
}

torch::Tensor SampleRandom::integers(int64_t low, int64_t high) {
  const auto range = static_cast<uint64_t>(high - low);
  torch::Tensor out = torch::empty({batch_size()}, torch::dtype(torch::kInt64));
  int64_t* data = out.data_ptr<int64_t>();
  // Rejection keeps every value equally likely for any range.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  for (size_t i = 0; i < streams_.size(); ++i) {
    uint64_t x;
    do {
      x = streams_[i].next();
    } while (x >= limit);
    data[i] = low + static_cast<int64_t>(x % range);
  }
  return out;
}

}  // namespace ocm::diffusion
