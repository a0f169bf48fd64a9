// How evaluation work is divided: over the ranks, then into batches.
#pragma once

#include <cstdint>
#include <vector>

namespace ocm::eval {

// The global indices [0, n) that `rank` of `world` handles: one contiguous block, so
// concatenating the ranks' blocks in rank order gives index order.
std::vector<int64_t> share_of(int64_t n, int rank, int world);

// `indices` cut, in order, into consecutive pieces of at most `batch` (>= 1) elements.
std::vector<std::vector<int64_t>> batches_of(const std::vector<int64_t>& indices, int64_t batch);

}  // namespace ocm::eval
