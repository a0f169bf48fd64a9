// Gradient averaging over 2 ranks equals the gradient of the whole global batch on one rank.
#include <mpi.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dist/communicator.h"
#include "dist/reducer.h"
#include "tests/mpi/mpi_test.h"

namespace ocm::dist {
namespace {

torch::nn::Sequential make_net() {
  return torch::nn::Sequential(torch::nn::Linear(5, 16), torch::nn::SiLU(),
                               torch::nn::Linear(16, 16), torch::nn::SiLU(),
                               torch::nn::Linear(16, 3));
}

TEST(Communicator, SumAndBroadcast) {
  auto communicator = make_cpu_communicator();
  ASSERT_EQ(communicator->world_size(), 2);
  const double r = communicator->rank();
  torch::Tensor t = torch::tensor({r + 1, 2 * (r + 1)}, torch::kFloat64);
  communicator->sum_async(t)->wait();
  EXPECT_TRUE(torch::equal(t, torch::tensor({3.0, 6.0}, torch::kFloat64))) << t;
  torch::manual_seed(100 + communicator->rank());  // different on each rank
  auto net = make_net();
  broadcast_parameters(net->parameters(), *communicator);
  for (const auto& p : net->parameters()) {
    torch::Tensor mine = p.detach().clone();
    torch::Tensor rank0 = p.detach().clone();
    communicator->broadcast(rank0, 0);
    EXPECT_TRUE(torch::equal(mine, rank0));
  }
}

TEST(GradientReducer, AveragedGradientsEqualTheWholeBatchGradient) {
  auto communicator = make_cpu_communicator();
  const int rank = communicator->rank(), world = communicator->world_size();
  torch::manual_seed(7);
  auto net = make_net();
  auto reference = make_net();
  {
    torch::NoGradGuard no_grad;
    const auto params = net->parameters();
    const auto copies = reference->parameters();
    for (size_t i = 0; i < params.size(); ++i)
      copies[i].copy_(params[i]);
  }
  GradientReducer reducer(net->parameters(), *communicator, /*bucket_bytes=*/512);
  EXPECT_GT(reducer.bucket_count(), 1u);
  torch::manual_seed(11);  // the same global batch on every rank
  const torch::Tensor x = torch::randn({8, 5});
  const torch::Tensor y = torch::randn({8, 3});
  for (int step = 0; step < 2; ++step) {  // twice: the reducer rearms itself
    net->zero_grad();
    const int64_t share = 8 / world;
    const torch::Tensor mine = x.narrow(0, rank * share, share);
    (net->forward(mine) - y.narrow(0, rank * share, share)).square().mean().backward();
    reducer.finish();
    reference->zero_grad();
    (reference->forward(x) - y).square().mean().backward();
    const auto params = net->parameters();
    const auto expected = reference->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      // Equal up to float32 summation order.
      EXPECT_TRUE(torch::allclose(params[i].grad(), expected[i].grad(), 1e-5, 1e-6)) << i;
    }
  }
}

}  // namespace
}  // namespace ocm::dist
