#include "eval/precision_recall.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <torch/torch.h>

namespace ocm::eval {
namespace {

// Squared distances [a rows, b rows] between the rows of `a` and of `b`, whose squared norms
// are `b_norms`.
torch::Tensor squared_distances(const torch::Tensor& a, const torch::Tensor& b,
                                const torch::Tensor& b_norms) {
  const torch::Tensor a_norms = a.square().sum(1, /*keepdim=*/true);
  return (a_norms + b_norms.unsqueeze(0) - 2 * a.mm(b.t())).clamp_min(0);
}

// The rank's share [begin, end) of n rows.
std::pair<int64_t, int64_t> row_share(int64_t n, dist::Communicator& communicator) {
  const int world = communicator.world_size(), rank = communicator.rank();
  return {n * rank / world, n * (rank + 1) / world};
}

// Squared radius of each point's ball: its distance to the k-th nearest other point (the
// (k + 1)-th smallest distance, the point itself being the first), for every point of the set.
torch::Tensor squared_radii(const torch::Tensor& manifold, const torch::Tensor& norms, int64_t k,
                            dist::Communicator& communicator, int64_t rows) {
  const int64_t n = manifold.size(0);
  torch::Tensor radii = torch::zeros({n}, torch::kFloat64);
  const auto [begin, end] = row_share(n, communicator);
  for (int64_t first = begin; first < end; first += rows) {
    const int64_t count = std::min(rows, end - first);
    const torch::Tensor d = squared_distances(manifold.narrow(0, first, count), manifold, norms);
    radii.narrow(0, first, count).copy_(std::get<0>(d.kthvalue(k + 1, 1)).cpu());
  }
  communicator.sum_async(radii)->wait();  // disjoint shares: the sum gathers them
  return radii;
}

// The fraction of `probes` inside at least one ball of the manifold.
double covered_fraction(const torch::Tensor& probes, const torch::Tensor& manifold,
                        const torch::Tensor& norms, const torch::Tensor& radii,
                        dist::Communicator& communicator, int64_t rows) {
  const int64_t n = probes.size(0);
  const auto [begin, end] = row_share(n, communicator);
  const torch::Tensor on_device_radii = radii.to(manifold.device());
  double inside = 0;
  for (int64_t first = begin; first < end; first += rows) {
    const int64_t count = std::min(rows, end - first);
    const torch::Tensor d = squared_distances(probes.narrow(0, first, count), manifold, norms);
    inside += (d <= on_device_radii.unsqueeze(0)).any(1).sum().item<double>();
  }
  torch::Tensor total = torch::tensor({inside}, torch::kFloat64);
  communicator.sum_async(total)->wait();
  return total.item<double>() / static_cast<double>(n);
}

// The fraction of `probes` inside the balls of `manifold`'s points.
double coverage(const torch::Tensor& manifold, const torch::Tensor& probes, int64_t k,
                dist::Communicator& communicator, int64_t rows) {
  const torch::Tensor norms = manifold.square().sum(1);
  const torch::Tensor radii = squared_radii(manifold, norms, k, communicator, rows);
  return covered_fraction(probes, manifold, norms, radii, communicator, rows);
}

}  // namespace

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated,
                                 int64_t k, dist::Communicator& communicator,
                                 const torch::Device& device, int64_t rows) {
  if (k < 1 || rows < 1 || real.dim() != 2 || generated.dim() != 2 ||
      real.size(1) != generated.size(1) || real.size(0) <= k || generated.size(0) <= k)
    throw std::logic_error("precision_recall: need [M, D] and [N, D] features with M, N > k >= 1");
  const torch::Tensor r = real.to(device, torch::kFloat64);
  const torch::Tensor g = generated.to(device, torch::kFloat64);
  return {coverage(r, g, k, communicator, rows), coverage(g, r, k, communicator, rows)};
}

}  // namespace ocm::eval
