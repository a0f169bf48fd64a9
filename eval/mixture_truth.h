// Data with a known answer: a dataset drawn from a Gaussian mixture that its manifest records
// (`ocm data prepare mixture`), and the distances that compare samples with that mixture.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include "data/dataset.h"
#include "data/manifest.h"
#include "diffusion/gaussian_mixture.h"
#include "diffusion/schedule.h"

namespace ocm::eval {

// The recorded mixture in closed form, diffused with `schedule`.
std::shared_ptr<diffusion::GaussianMixture> mixture_model(const data::MixtureSpec& spec,
                                                          const diffusion::Schedule& schedule);

struct MixtureDatasetOptions {
  std::string spec_path;  // JSON: {"weights": [K], "means": [[D]...], "stds": [[D]...]}
  std::string out_dir;
  int64_t train = 50000;  // elements of the train split
  int64_t test = 10000;   // elements of the test split, independent of the train split's
  uint64_t seed = 0;
  data::ShardLayout layout;
};

// Draws both splits (element i of a split from its own stream, Note [per-sample randomness])
// and writes them as an arrays dataset whose manifest records the mixture.
void write_mixture_dataset(const MixtureDatasetOptions& options);

// Note [block MMD]
// Sample quality against a known distribution: squared MMD with the Gaussian kernel
// k(x, y) = exp(-|x - y|^2 / (2 h^2)). h is the median distance between 2000 draws of the true
// distribution (fixed seed), so every setting of an evaluation is measured with the same kernel.
// The n samples are cut into blocks of 250 consecutive indices; each block's unbiased estimate
// against its own fresh true draws is independent of every other block's, so the mean over blocks
// is unbiased and its standard error is the blocks' standard deviation / sqrt(blocks). A sampler
// that draws from the true distribution scores 0 within that error (the estimate can be < 0).
constexpr int64_t kMmdBlock = 250;

// The unbiased MMD^2 estimate of x [n, D] against y [m, D] (n, m >= 2), in float64.
double unbiased_mmd2(const torch::Tensor& x, const torch::Tensor& y, double bandwidth);

// The kernel bandwidth of Note [block MMD] for `truth`.
double mmd_bandwidth(const diffusion::GaussianMixture& truth);

// Fresh true draws for the samples `indices` of an MMD block, independent of every sample and
// of the dataset.
torch::Tensor true_draws(const diffusion::GaussianMixture& truth,
                         const std::vector<int64_t>& indices, uint64_t seed);

}  // namespace ocm::eval
