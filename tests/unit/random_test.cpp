// The per-sample generators (Note [per-sample randomness], Note [counter-based draws]): Philox
// against Random123's published known answers, draws that do not depend on how a batch is split,
// and the distributions each transform promises.
#include <cmath>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/philox.h"
#include "diffusion/random.h"

namespace ocm::diffusion {
namespace {

std::vector<int64_t> range(int64_t begin, int64_t end) {
  std::vector<int64_t> out(static_cast<size_t>(end - begin));
  std::iota(out.begin(), out.end(), begin);
  return out;
}

// Random123's tests/kat_vectors for philox4x32 with 10 rounds.
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Case {
    philox::Block counter;
    uint32_t key0, key1;
    philox::Block expected;
  };
  const Case cases[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Case& c : cases) {
    const philox::Block out = philox::philox4x32_10(c.counter, c.key0, c.key1);
    for (int w = 0; w < 4; ++w)
      EXPECT_EQ(out.word[w], c.expected.word[w]) << "word " << w;
  }
}

// What one draw of each kind gives samples `indices` with the given generator.
std::vector<torch::Tensor> draws(Generator generator, const std::vector<int64_t>& indices,
                                 uint64_t step) {
  SampleRandom random(7, RandomPurpose::kTraining, indices, step, generator);
  const auto options = torch::dtype(torch::kFloat32);
  return {random.integers(1, 1001).to(torch::kFloat64), random.normal({3, 5, 5}, options),
          random.rademacher({3, 5, 5}, options), random.uniform({6}, options)};
}

TEST(PhiloxDraws, AreTheSameHoweverTheBatchIsSplit) {
  const std::vector<torch::Tensor> whole = draws(Generator::kPhilox, range(40, 48), 12);
  const std::vector<torch::Tensor> first = draws(Generator::kPhilox, range(40, 43), 12);
  const std::vector<torch::Tensor> rest = draws(Generator::kPhilox, range(43, 48), 12);
  const std::vector<torch::Tensor> shuffled = draws(Generator::kPhilox, {47, 40, 45}, 12);
  for (size_t k = 0; k < whole.size(); ++k) {
    EXPECT_TRUE(torch::equal(whole[k], torch::cat({first[k], rest[k]}))) << "draw " << k;
    EXPECT_TRUE(torch::equal(shuffled[k][0], whole[k][7])) << "draw " << k;
    EXPECT_TRUE(torch::equal(shuffled[k][2], whole[k][5])) << "draw " << k;
  }
}

TEST(PhiloxDraws, DependOnStepSeedAndDrawAndDifferFromTheStreams) {
  const std::vector<torch::Tensor> a = draws(Generator::kPhilox, range(0, 4), 12);
  const std::vector<torch::Tensor> next_step = draws(Generator::kPhilox, range(0, 4), 13);
  const std::vector<torch::Tensor> stream = draws(Generator::kStream, range(0, 4), 12);
  for (size_t k = 1; k < a.size(); ++k) {
    EXPECT_FALSE(torch::equal(a[k], next_step[k])) << "draw " << k;
    EXPECT_FALSE(torch::equal(a[k], stream[k])) << "draw " << k;
  }
  SampleRandom random(7, RandomPurpose::kTraining, range(0, 4), 12, Generator::kPhilox);
  const torch::Tensor first = random.normal({10}, torch::dtype(torch::kFloat64));
  const torch::Tensor second = random.normal({10}, torch::dtype(torch::kFloat64));
  EXPECT_FALSE(torch::equal(first, second));
  SampleRandom other_seed(8, RandomPurpose::kTraining, range(0, 4), 12, Generator::kPhilox);
  EXPECT_FALSE(torch::equal(first, other_seed.normal({10}, torch::dtype(torch::kFloat64))));
}

TEST(PhiloxDraws, Float32IsTheDoubleDrawRounded) {
  SampleRandom in_double(3, RandomPurpose::kSampling, range(0, 5), 0, Generator::kPhilox);
  SampleRandom in_float(3, RandomPurpose::kSampling, range(0, 5), 0, Generator::kPhilox);
  const torch::Tensor d = in_double.normal({100}, torch::dtype(torch::kFloat64));
  EXPECT_TRUE(
      torch::equal(in_float.normal({100}, torch::dtype(torch::kFloat32)), d.to(torch::kFloat32)));
}

// 200,000 draws of each kind: moments within 5 standard errors of the distribution's.
TEST(PhiloxDraws, HaveTheMomentsOfTheirDistributions) {
  constexpr int64_t kSamples = 1000, kElements = 200;
  SampleRandom random(11, RandomPurpose::kTraining, range(0, kSamples), 3, Generator::kPhilox);
  const auto options = torch::dtype(torch::kFloat64);
  const double n = kSamples * kElements;
  const torch::Tensor z = random.normal({kElements}, options);
  EXPECT_LT(std::abs(z.mean().item<double>()), 5 / std::sqrt(n));
  EXPECT_LT(std::abs(z.square().mean().item<double>() - 1), 5 * std::sqrt(2 / n));
  EXPECT_LT(std::abs(z.pow(4).mean().item<double>() - 3), 5 * std::sqrt(96 / n));
  // Pairs share a block: the sine and cosine halves must still be uncorrelated.
  const torch::Tensor even = z.index({torch::indexing::Slice(), torch::indexing::Slice(0, 200, 2)});
  const torch::Tensor odd = z.index({torch::indexing::Slice(), torch::indexing::Slice(1, 200, 2)});
  EXPECT_LT(std::abs((even * odd).mean().item<double>()), 5 / std::sqrt(n / 2));
  const torch::Tensor r = random.rademacher({kElements}, options);
  EXPECT_TRUE(torch::all(r.abs() == 1).item<bool>());
  EXPECT_LT(std::abs(r.mean().item<double>()), 5 / std::sqrt(n));
  const torch::Tensor u = random.uniform({kElements}, options);
  EXPECT_GE(u.min().item<double>(), 0.0);
  EXPECT_LT(u.max().item<double>(), 1.0);
  EXPECT_LT(std::abs(u.mean().item<double>() - 0.5), 5 * std::sqrt(1.0 / 12 / n));
}

// Timesteps of 20,000 samples in [1, 10]: a chi-square over the ten values below its 0.9999
// quantile (33.7 for 9 degrees of freedom), and every value reached.
TEST(PhiloxDraws, IntegersAreUniformOverTheirRange) {
  SampleRandom random(5, RandomPurpose::kTraining, range(0, 20000), 1, Generator::kPhilox);
  const torch::Tensor t = random.integers(1, 11);
  EXPECT_EQ(t.min().item<int64_t>(), 1);
  EXPECT_EQ(t.max().item<int64_t>(), 10);
  const torch::Tensor counts = torch::bincount(t - 1, {}, 10).to(torch::kFloat64);
  const double chi_square = ((counts - 2000).square() / 2000).sum().item<double>();
  EXPECT_LT(chi_square, 33.7);
}

TEST(PhiloxDraws, RefuseAStepBeyondTheCounter) {
  EXPECT_THROW(
      SampleRandom(0, RandomPurpose::kTraining, {0}, uint64_t{1} << 32, Generator::kPhilox),
      std::invalid_argument);
  EXPECT_THROW(generator_named("mt19937"), std::invalid_argument);
  EXPECT_EQ(generator_named(generator_name(Generator::kPhilox)), Generator::kPhilox);
  EXPECT_EQ(generator_named(generator_name(Generator::kStream)), Generator::kStream);
}

}  // namespace
}  // namespace ocm::diffusion
