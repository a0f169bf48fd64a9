#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "diffusion/gaussian_mixture.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"

namespace ocm::diffusion {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

TEST(UNet, PublishedCifar10ConfigurationHas35_7MParameters) {
  const auto network = make_unet(UNetOptions{});  // ch 128, mult 1,2,2,2, 2 blocks, attn 16
  // Ho et al. (2020) report 35.7M for this configuration.
  EXPECT_EQ(count_parameters(*network), 35746307);
}

TEST(Networks, ConfigBuildsTrunkAndHeadAndRejectsMismatches) {
  Config config = default_config();
  ModelConfig& model = config.model;
  EXPECT_EQ(count_parameters(*make_network(config, {3, 32, 32})), 35746307);
  EXPECT_THROW(make_network(config, {1, 28, 28}), UserError);  // four levels do not divide 28
  model.ch_mult = {1, 2, 2};
  model.attn_resolutions = {14};
  model.ch = 32;
  auto trunk = as_trunk(make_network(config, {1, 28, 28}));
  auto head = make_head(model, {1, 28, 28});
  const TrunkOutput out = trunk->forward(torch::randn({2, 1, 28, 28}), torch::tensor({5, 500}));
  EXPECT_EQ(head->forward(out.features, out.time_embedding).sizes(),
            (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_THROW(make_network(config, {8}), UserError);
  model.head = "mlp";
  EXPECT_THROW(make_head(model, {1, 28, 28}), UserError);
  model.kind = "mlp";
  auto mlp = as_trunk(make_network(config, {8}));
  const TrunkOutput vec = mlp->forward(torch::randn({4, 8}), torch::tensor({1, 2, 3, 4}));
  EXPECT_EQ(make_head(model, {8})->forward(vec.features, vec.time_embedding).sizes(),
            (std::vector<int64_t>{4, 8}));
  EXPECT_THROW(make_network(config, {1, 28, 28}), UserError);
}

// Note [time input]: auto is each family's published convention.
TEST(TimeInput, AutoIsEachFamilysPublishedConvention) {
  auto expect_input = [](const std::string& convention, const std::string& kind, int64_t n,
                         double shift, double scale) {
    const TimeInput input = time_input_of(convention, kind, n);
    EXPECT_EQ(input.shift, shift) << convention << " " << kind;
    EXPECT_DOUBLE_EQ(input.scale, scale) << convention << " " << kind;
  };
  expect_input("auto", "unet", 1000, 1, 1);
  expect_input("auto", "iddpm", 4000, 1, 0.25);
  expect_input("auto", "mlp", 1000, 0, 1);
  expect_input("t*1000/N", "iddpm", 2000, 0, 0.5);
  const torch::Tensor time =
      time_input_of("(t-1)*1000/N", "iddpm", 4000).network_time(torch::tensor({1, 4000}));
  EXPECT_TRUE(torch::equal(time, torch::tensor({0.0f, 999.75f})));
  EXPECT_THROW(time_input_of("t+1", "unet", 1000), UserError);
}

TEST(UNet, OutputShapesFor28And32AndZeroOutputAtInit) {
  torch::manual_seed(0);
  for (const auto& [resolution, channels, mult] :
       std::vector<std::tuple<int64_t, int64_t, std::vector<int64_t>>>{{28, 1, {1, 2, 2}},
                                                                       {32, 3, {1, 2, 2, 2}}}) {
    UNetOptions options;
    options.in_channels = channels;
    options.resolution = resolution;
    options.ch = 32;
    options.ch_mult = mult;
    options.num_res_blocks = 1;
    options.attn_resolutions = {resolution / 2};
    auto trunk = as_trunk(make_unet(options));
    const torch::Tensor x = torch::randn({2, channels, resolution, resolution});
    const TrunkOutput out = trunk->forward(x, torch::tensor({1, 999}));
    EXPECT_EQ(out.eps.sizes(), x.sizes());
    EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{2, 32, resolution, resolution}));
    EXPECT_EQ(out.eps.abs().max().item<float>(), 0.0f);
    for (const std::string kind : {"simple", "complex"}) {
      auto head = make_head({kind, 32, 128, channels});
      const torch::Tensor h = head->forward(out.features, out.time_embedding);
      EXPECT_EQ(h.sizes(), x.sizes());
      EXPECT_EQ(h.abs().max().item<float>(), 0.0f);
    }
  }
}

TEST(UNet, RejectsImageSizesTheLevelsDoNotDivide) {
  UNetOptions options;
  options.resolution = 28;  // four levels need a multiple of 8
  EXPECT_THROW(make_unet(options), UserError);
  options.ch_mult = {};
  EXPECT_THROW(make_unet(options), UserError);
}

// An 8x8 UNet of two levels with attention at 4x4 and no dropout: small enough for exhaustive
// checks.
UNetOptions tiny_unet_options(int64_t channels) {
  UNetOptions options;
  options.in_channels = channels;
  options.resolution = 8;
  options.ch = 8;
  options.ch_mult = {1, 2};
  options.num_res_blocks = 1;
  options.attn_resolutions = {4};
  options.dropout = 0;
  return options;
}

// Central differences in float64 against autograd, on a tiny UNet with every weight random.
TEST(UNet, GradientsMatchFiniteDifferences) {
  torch::manual_seed(1);
  auto network = make_unet(tiny_unet_options(2));
  network->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network->parameters())
      p.normal_(0, 0.3);
  }
  auto trunk = as_trunk(network);
  const torch::Tensor x = torch::randn({2, 2, 8, 8}, kDouble).requires_grad_(true);
  const torch::Tensor t = torch::tensor({3, 700});
  auto loss = [&](const torch::Tensor& input) {
    return trunk->forward(input, t).eps.square().sum();
  };
  network->zero_grad();
  loss(x).backward();
  const double step = 1e-6;
  int checked = 0;
  for (auto& item : network->named_parameters()) {
    if (checked++ % 5 != 0)
      continue;  // a spread of layers keeps the test fast
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    torch::NoGradGuard no_grad;
    auto flat = p.view(-1);
    const int64_t i = flat.numel() / 2;
    const double saved = flat[i].item<double>();
    flat[i] = saved + step;
    const double up = loss(x).item<double>();
    flat[i] = saved - step;
    const double down = loss(x).item<double>();
    flat[i] = saved;
    const double numeric = (up - down) / (2 * step);
    const double analytic = p.grad().view(-1)[i].item<double>();
    EXPECT_NEAR(analytic, numeric, 1e-5 * std::max(1.0, std::abs(numeric))) << name;
  }
}

TEST(OcmLoss, OnlyTheHeadReceivesGradients) {
  torch::manual_seed(2);
  auto network = make_mlp({3, 32, 2});
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network->parameters())
      p.normal_(0, 0.3);
  }
  auto trunk = as_trunk(network);
  auto head = make_head({"mlp", 32, 32, 3, 32});
  const Schedule schedule("linear", 1000);
  const torch::Tensor x0 = torch::randn({16, 3});
  const torch::Tensor t = torch::randint(1, 1001, {16});
  const torch::Tensor noise = torch::randn({16, 3});
  const torch::Tensor probes = torch::randint(0, 2, {2, 16, 3}).to(torch::kFloat32) * 2 - 1;
  ocm_loss(*trunk, *head, schedule, x0, t, noise, probes).backward();
  for (const auto& p : network->parameters())
    EXPECT_FALSE(p.grad().defined());
  double head_gradient = 0;
  for (const auto& p : head->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    head_gradient += p.grad().abs().sum().item<double>();
  }
  EXPECT_GT(head_gradient, 0);
}

// Data parallelism splits a batch over ranks and micro-batches: each sample's OCM loss must
// depend on that sample alone, so the loss of a batch is the mean of its halves' losses.
TEST(OcmLoss, OfABatchIsTheMeanOfItsHalves) {
  torch::manual_seed(4);
  auto network = make_unet(tiny_unet_options(1));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network->parameters())
      p.normal_(0, 0.2);
  }
  network->eval();
  auto trunk = as_trunk(network);
  HeadOptions head_options;
  head_options.kind = "complex";
  head_options.feature_channels = 8;
  head_options.time_embedding_dim = 32;
  head_options.out_channels = 1;
  auto head = make_head(head_options);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : head->parameters())
      p.normal_(0, 0.2);
  }
  const Schedule schedule("linear", 1000);
  const torch::Tensor x0 = torch::randn({8, 1, 8, 8});
  const torch::Tensor t = torch::randint(1, 1001, {8});
  const torch::Tensor noise = torch::randn({8, 1, 8, 8});
  const torch::Tensor probes = torch::randint(0, 2, {2, 8, 1, 8, 8}).to(torch::kFloat32) * 2 - 1;
  auto loss = [&](int64_t first, int64_t n) {
    return ocm_loss(*trunk, *head, schedule, x0.narrow(0, first, n), t.narrow(0, first, n),
                    noise.narrow(0, first, n), probes.narrow(1, first, n))
        .item<double>();
  };
  const double whole = loss(0, 8);
  EXPECT_NEAR(whole, (loss(0, 4) + loss(4, 4)) / 2, 1e-6 * whole);
  torch::Tensor eps_whole = trunk->forward(x0, t).eps;
  torch::Tensor eps_half = trunk->forward(x0.narrow(0, 0, 4), t.narrow(0, 0, 4)).eps;
  EXPECT_LE((eps_whole.narrow(0, 0, 4) - eps_half).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace ocm::diffusion
