// Note [model FLOPs]: the operator-watching FLOP count against closed forms, one layer at a time.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "bench/roofline.h"

namespace ocm::bench {
namespace {

namespace nn = torch::nn;

double flops_of(const std::function<torch::Tensor()>& forward) {
  torch::NoGradGuard no_grad;
  return count_matmul_flops([&] { forward(); });
}

TEST(ModelFlops, ConvolutionIsTwicePerOutputTimesItsGroupsWeights) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).padding(1));
  // 2 images x 8 channels x 8 x 8 outputs, each 3 x 3 x 3 multiply-adds.
  EXPECT_EQ(flops_of([&] { return conv(torch::randn({2, 3, 8, 8})); }), 2.0 * 2 * 8 * 64 * 27);
  nn::Conv2d strided(nn::Conv2dOptions(4, 6, 3).stride(2).groups(2));
  // Output 2 x 2 per channel; each group sees 2 input channels.
  EXPECT_EQ(flops_of([&] { return strided(torch::randn({1, 4, 5, 5})); }), 2.0 * 6 * 4 * 18);
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(4, 3, 2).stride(2));
  // Each of the 100 input elements meets 3 x 2 x 2 weights.
  EXPECT_EQ(flops_of([&] { return up(torch::randn({1, 4, 5, 5})); }), 2.0 * 100 * 12);
}

TEST(ModelFlops, ProductsCountTwiceTheirMultiplyAdds) {
  nn::Linear with_bias(16, 4);
  nn::Linear without_bias(nn::LinearOptions(16, 4).bias(false));
  EXPECT_EQ(flops_of([&] { return with_bias(torch::randn({5, 16})); }), 2.0 * 5 * 16 * 4);
  EXPECT_EQ(flops_of([&] { return without_bias(torch::randn({5, 16})); }), 2.0 * 5 * 16 * 4);
  EXPECT_EQ(flops_of([&] {
              return torch::bmm(torch::randn({3, 4, 5}), torch::randn({3, 5, 6}));
            }),
            2.0 * 3 * 4 * 5 * 6);
  EXPECT_EQ(flops_of([&] {
              return torch::baddbmm(torch::zeros({3, 4, 6}), torch::randn({3, 4, 5}),
                                    torch::randn({3, 5, 6}));
            }),
            2.0 * 3 * 4 * 5 * 6);
}

TEST(ModelFlops, ElementwiseWorkAndWorkOutsideTheCountAreNotCounted) {
  const torch::Tensor x = torch::randn({64, 64});
  EXPECT_EQ(flops_of([&] { return torch::relu(x) + x.exp() * 2; }), 0.0);
  nn::Linear layer(8, 8);
  EXPECT_EQ(flops_of([&] { return layer(torch::randn({1, 8})); }), 2.0 * 64);
  layer(torch::randn({1, 8}));  // after the count: nothing listens any more
  EXPECT_EQ(flops_of([&] { return torch::relu(x); }), 0.0);
}

TEST(ModelFlops, ANetworkCountIsTheSumOfItsLayers) {
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)), nn::SiLU(), nn::Flatten(),
                     nn::Linear(4 * 6 * 6, 10));
  const double conv = 2.0 * 3 * 4 * 36 * 9, linear = 2.0 * 3 * 144 * 10;
  EXPECT_EQ(flops_of([&] { return net->forward(torch::randn({3, 1, 6, 6})); }), conv + linear);
}

}  // namespace
}  // namespace ocm::bench
