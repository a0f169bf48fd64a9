// Improved precision and recall of generated samples in a feature space.
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "dist/communicator.h"

namespace ocm::eval {

// Note [precision and recall]
// Kynkaanniemi et al. (2019), as StyleGAN3's metrics/precision_recall.py computes it: each
// point of a set ("manifold") gets a ball reaching its k-th nearest other point of the set;
// precision is the fraction of generated points inside at least one ball of the real set, recall
// the fraction of real points inside at least one ball of the generated set (distance <= radius
// counts as inside). Distances are Euclidean in the feature network's space, computed in float64
// as |a|^2 + |b|^2 - 2 a.b and compared squared. StyleGAN3 uses VGG16 features (k = 3, 50,000
// of each); ours are those of --features, the FID/FD network, so the figures are comparable with
// tables made with the same network only.
// Distributed by rows: every rank holds both feature sets whole (the generated ones are
// broadcast from the ranks that made them), computes the radii of its share of each manifold's
// points and the verdicts of its share of the probes against all of the other set; radii and
// counts are then summed over the ranks. The O(M N D) distance work divides by the world size;
// the memory does not (both sets, float64, on every rank: 1.6 GB for 50,000 2048-d features of
// each), which is why the sets are not sharded: a sharded manifold would need a ring of
// partial k-nearest lists, for work that is already divided.
struct PrecisionRecall {
  double precision = 0;
  double recall = 0;
};

// real [M, D] and generated [N, D] (float64, the same on every rank; M, N > k), k >= 1. The
// distance blocks are `rows` x M (or N) float64 on `device`.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated,
                                 int64_t k, dist::Communicator& communicator,
                                 const torch::Device& device, int64_t rows = 1024);

}  // namespace ocm::eval
