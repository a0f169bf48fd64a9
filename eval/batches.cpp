#include "eval/batches.h"

#include <algorithm>
#include <stdexcept>

namespace ocm::eval {

std::vector<int64_t> share_of(int64_t n, int rank, int world) {
  const int64_t begin = n * rank / world, end = n * (rank + 1) / world;
  std::vector<int64_t> indices;
  for (int64_t i = begin; i < end; ++i)
    indices.push_back(i);
  return indices;
}

std::vector<std::vector<int64_t>> batches_of(const std::vector<int64_t>& indices, int64_t batch) {
  if (batch < 1)
    throw std::invalid_argument("batches_of: batch must be at least 1");
  std::vector<std::vector<int64_t>> out;
  for (auto first = indices.begin(); first != indices.end();) {
    const auto last = first + std::min<std::ptrdiff_t>(batch, indices.end() - first);
    out.emplace_back(first, last);
    first = last;
  }
  return out;
}

}  // namespace ocm::eval
