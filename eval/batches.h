// How evaluation work is divided: over the ranks, then into batches.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "dist/communicator.h"

namespace ocm::eval {

// The global indices [0, n) that `rank` of `world` handles: one contiguous block, so
// concatenating the ranks' blocks in rank order gives index order.
std::vector<int64_t> share_of(int64_t n, int rank, int world);

// `indices` cut, in order, into consecutive pieces of at most `batch` (>= 1) elements.
std::vector<std::vector<int64_t>> batches_of(const std::vector<int64_t>& indices, int64_t batch);

// Every rank's share_of() block, all of one dtype and element shape, concatenated in rank (so
// index) order on rank 0; an undefined tensor on the other ranks. Collective over the processes.
torch::Tensor gather_shares(const torch::Tensor& mine);

// Every rank's share_of(total) block of float64 rows, concatenated in index order on every rank.
// Collective: each rank places its block in zeros and the ranks sum, which is exact since the
// blocks do not overlap.
torch::Tensor all_shares(const torch::Tensor& mine, int64_t total,
                         dist::Communicator& communicator);

}  // namespace ocm::eval
