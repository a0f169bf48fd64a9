#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

#include "dist/communicator.h"

namespace ocm::eval {

// Note [feature statistics]
// Mean and covariance of a set's features, accumulated as float64 sums (count, sum of x, sum of
// x x^T) that ranks add together, so a split's statistics do not depend on how it was divided.
// The Frechet distance is computed in float64 through symmetric eigendecompositions: with
// S1 = U diag(l) U^T, tr sqrt(S1^(1/2) S2 S1^(1/2)) is the sum of the square roots of the
// eigenvalues of the symmetric matrix S1^(1/2) S2 S1^(1/2). No general (non-symmetric) matrix
// square root is ever taken, and tiny negative eigenvalues from rounding are clamped to 0.
class FeatureSums {
 public:
  explicit FeatureSums(int64_t dim);
  void add(const torch::Tensor& features);        // [n, dim], any floating type and device
  void reduce(dist::Communicator& communicator);  // sums over ranks, in place
  int64_t count() const { return count_; }
  int64_t dim() const { return sum_.size(0); }

  torch::Tensor mean() const;        // float64 [dim]
  torch::Tensor covariance() const;  // float64 [dim, dim], unbiased (n - 1)

 private:
  int64_t count_ = 0;
  torch::Tensor sum_;    // float64 [dim]
  torch::Tensor outer_;  // float64 [dim, dim]
};

struct FeatureStatistics {
  torch::Tensor mean;        // float64 [dim]
  torch::Tensor covariance;  // float64 [dim, dim]
  int64_t count = 0;
  std::string features;  // which feature network (file name and sha256)
  std::string source;    // what set they describe
};

FeatureStatistics statistics_of(const FeatureSums& sums, const std::string& features,
                                const std::string& source);

// ||m1 - m2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1^(1/2) S2 S1^(1/2)).
double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b);

// An HDF5 file: datasets `mu` [D] and `sigma` [D, D] (float64), attributes count, features,
// source; readable by h5py. Written through a temporary name and a rename, then its SHA-256 goes
// to FILE.sha256 (sha256sum's format) the same way. With the extension .npz: `mu` and `sigma`.
void save_statistics(const std::string& path, const FeatureStatistics& statistics);
// Throws UserError naming the file and what is wrong (missing, no or another checksum, not HDF5,
// shapes, non-finite). An HDF5 file is opened only once it matches its FILE.sha256 (Note
// [verified before HDF5]).
FeatureStatistics load_statistics(const std::string& path);
// The statistics of an HDF5 file without that check: for load_statistics once it has made it,
// and for the fuzz harness.
FeatureStatistics read_statistics_file(const std::string& path);

}  // namespace ocm::eval
