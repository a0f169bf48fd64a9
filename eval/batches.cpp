#include "eval/batches.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "dist/topology.h"

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

torch::Tensor gather_shares(const torch::Tensor& mine) {
  const torch::Tensor data = mine.contiguous().cpu();
  const std::vector<std::string> parts =
      dist::gather_strings(std::string(static_cast<const char*>(data.data_ptr()), data.nbytes()));
  if (parts.empty())
    return {};
  std::string all;
  for (const auto& part : parts)
    all += part;
  std::vector<int64_t> shape = data.sizes().vec();
  const int64_t per_element = data.numel() > 0 ? data.nbytes() / data.size(0) : 0;
  shape[0] = per_element > 0 ? static_cast<int64_t>(all.size()) / per_element : 0;
  return torch::from_blob(all.data(), shape, data.options()).clone();
}

torch::Tensor all_shares(const torch::Tensor& mine, int64_t total,
                         dist::Communicator& communicator) {
  const int64_t begin = total * communicator.rank() / communicator.world_size();
  const int64_t end = total * (communicator.rank() + 1) / communicator.world_size();
  if (mine.dim() < 1 || mine.size(0) != end - begin)
    throw std::logic_error("all_shares: this rank's block is not its share of the rows");
  std::vector<int64_t> shape = mine.sizes().vec();
  shape[0] = total;
  torch::Tensor all = torch::zeros(shape, torch::kFloat64);
  all.narrow(0, begin, mine.size(0)).copy_(mine);
  communicator.sum_async(all)->wait();
  return all;
}

}  // namespace ocm::eval
