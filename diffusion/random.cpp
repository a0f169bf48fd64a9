#include "diffusion/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace ocm::diffusion {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

template <class Draw>
torch::Tensor per_sample(std::vector<at::Generator>& generators, Draw draw) {
  std::vector<torch::Tensor> draws;
  draws.reserve(generators.size());
  for (auto& generator : generators)
    draws.push_back(draw(generator));
  return torch::stack(draws);
}

torch::TensorOptions cpu_float() {
  return torch::TensorOptions().dtype(torch::kFloat32);
}

}  // namespace

uint64_t derive_seed(std::initializer_list<uint64_t> parts) {
  uint64_t state = 0x6f636d2d73656564ULL;
  for (const uint64_t part : parts)
    state = splitmix64(state ^ splitmix64(part));
  return state;
}

SampleRandom::SampleRandom(uint64_t seed, RandomPurpose purpose,
                           const std::vector<int64_t>& indices, uint64_t extra) {
  generators_.reserve(indices.size());
  for (const int64_t index : indices) {
    generators_.push_back(at::detail::createCPUGenerator(
        derive_seed({seed, static_cast<uint64_t>(purpose), extra, static_cast<uint64_t>(index)})));
  }
}

torch::Tensor SampleRandom::normal(at::IntArrayRef sample_shape,
                                   const torch::TensorOptions& options) {
  return per_sample(generators_,
                    [&](at::Generator& g) { return torch::randn(sample_shape, g, cpu_float()); })
      .to(options);
}

torch::Tensor SampleRandom::rademacher(at::IntArrayRef sample_shape,
                                       const torch::TensorOptions& options) {
  return per_sample(generators_,
                    [&](at::Generator& g) {
                      return torch::randint(0, 2, sample_shape, g, cpu_float()) * 2 - 1;
                    })
      .to(options);
}

torch::Tensor SampleRandom::integers(int64_t low, int64_t high) {
  return per_sample(generators_, [&](at::Generator& g) {
    return torch::randint(low, high, {}, g, torch::TensorOptions().dtype(torch::kInt64));
  });
}

torch::Tensor SampleRandom::uniform(at::IntArrayRef sample_shape,
                                    const torch::TensorOptions& options) {
  return per_sample(generators_,
                    [&](at::Generator& g) { return torch::rand(sample_shape, g, cpu_float()); })
      .to(options);
}

}  // namespace ocm::diffusion
