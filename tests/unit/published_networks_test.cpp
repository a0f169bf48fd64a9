// Our two UNet families against an independent PyTorch version of the published networks
// (tests/reference/published_unets.py): same parameter names and shapes, same outputs on the
// same weights and inputs, and the full-size published configurations' parameter counts.
// tests/reference/make_reference.py writes the reference side into OCM_REFERENCE_DIR first.
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "checkpoints/safetensors.h"
#include "common/config.h"
#include "diffusion/networks.h"

namespace ocm::diffusion {
namespace {

using nlohmann::json;

std::string reference_file(const std::string& name) {
  return std::string(OCM_REFERENCE_DIR) + "/" + name;
}

struct Reference {
  Config config;
  std::vector<int64_t> shape;
  checkpoints::TensorMap tensors;
};

Reference read_reference(const std::string& name) {
  checkpoints::SafetensorsFile file =
      checkpoints::read_safetensors(reference_file(name + ".safetensors"));
  Reference r{default_config(), json::parse(file.metadata.at("shape")).get<std::vector<int64_t>>(),
              std::move(file.tensors)};
  const json model = json::parse(file.metadata.at("model"));
  ModelConfig& m = r.config.model;
  m.kind = model.at("kind");
  m.ch = model.at("ch");
  m.ch_mult = model.at("ch_mult").get<std::vector<int64_t>>();
  m.num_res_blocks = model.at("num_res_blocks");
  m.attn_resolutions = model.at("attn_resolutions").get<std::vector<int64_t>>();
  m.dropout = model.at("dropout");
  m.head = model.at("head");
  m.num_heads = model.value("num_heads", 1);
  m.num_head_channels = model.value("num_head_channels", 0);
  m.use_scale_shift_norm = model.value("use_scale_shift_norm", false);
  m.resblock_updown = model.value("resblock_updown", false);
  m.learn_sigma = model.value("learn_sigma", false);
  m.time_input = file.metadata.at("time_input");
  r.config.diffusion.num_timesteps = std::stoll(file.metadata.at("num_timesteps"));
  return r;
}

// Copies `prefix`/<name> into each parameter; every name must be there with its shape, and
// every tensor under `prefix` must be used.
void load(torch::nn::Module& module, const checkpoints::TensorMap& tensors,
          const std::string& prefix) {
  torch::NoGradGuard no_grad;
  std::set<std::string> unused;
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind(prefix, 0) == 0)
      unused.insert(name);
  }
  for (auto& item : module.named_parameters()) {
    const std::string name = prefix + item.key();
    ASSERT_TRUE(tensors.count(name)) << "the reference has no " << name;
    ASSERT_EQ(tensors.at(name).sizes(), item.value().sizes()) << name;
    item.value().copy_(tensors.at(name));
    unused.erase(name);
  }
  for (const std::string& name : unused)
    ADD_FAILURE() << "reference tensor " << name << " has no parameter of ours";
}

double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  return (ours - reference).abs().max().item<double>() / reference.abs().max().item<double>();
}

class PublishedNetwork : public testing::TestWithParam<std::string> {};

TEST_P(PublishedNetwork, MatchesTheReferenceOnTheSameWeights) {
  const Reference r = read_reference(GetParam());
  auto network = make_network(r.config, r.shape);
  auto head = make_head(r.config.model, r.shape);
  network->to(torch::kFloat64);
  head->to(torch::kFloat64);
  load(*network, r.tensors, "trunk/");
  load(*head, r.tensors, "head/");
  network->eval();
  head->eval();
  torch::NoGradGuard no_grad;
  const TrunkOutput out = as_trunk(network)->forward(r.tensors.at("x"), r.tensors.at("t"));
  const torch::Tensor h = head->forward(out.features, out.time_embedding);
  EXPECT_LT(relative_error(out.eps, r.tensors.at("eps")), 1e-5);
  EXPECT_LT(relative_error(out.features, r.tensors.at("features")), 1e-5);
  EXPECT_LT(relative_error(h, r.tensors.at("h")), 1e-5);
  ASSERT_EQ(out.variance.defined(), r.tensors.count("variance") == 1);
  if (out.variance.defined()) {
    EXPECT_LT(relative_error(out.variance, r.tensors.at("variance")), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, PublishedNetwork,
                         testing::Values("ddpm", "ddpm_simple_head", "iddpm_cifar",
                                         "iddpm_imagenet", "guided"));

// A shifted time input is part of what is checked above: the same network fed t instead of
// t - 1 must not match.
TEST(PublishedNetwork, AnotherTimeInputDoesNotMatch) {
  Reference r = read_reference("ddpm");
  r.config.model.time_input = "t";
  auto network = make_network(r.config, r.shape);
  network->to(torch::kFloat64);
  load(*network, r.tensors, "trunk/");
  network->eval();
  torch::NoGradGuard no_grad;
  const TrunkOutput out = as_trunk(network)->forward(r.tensors.at("x"), r.tensors.at("t"));
  EXPECT_GT(relative_error(out.eps, r.tensors.at("eps")), 1e-4);
}

Config published(const std::string& kind, std::vector<int64_t> ch_mult, int64_t blocks,
                 std::vector<int64_t> attention) {
  Config c = default_config();
  c.model.kind = kind;
  c.model.ch_mult = std::move(ch_mult);
  c.model.num_res_blocks = blocks;
  c.model.attn_resolutions = std::move(attention);
  c.model.num_heads = 4;
  c.model.use_scale_shift_norm = kind == "iddpm";
  return c;
}

// The full-size published configurations, counted by us and by the reference.
TEST(PublishedNetwork, FullSizeConfigurationsHaveThePublishedParameterCounts) {
  std::ifstream in(reference_file("parameter_counts.json"));
  const json reference = json::parse(in);
  Config lsun = published("iddpm", {1, 1, 2, 2, 4, 4}, 2, {32, 16, 8});
  lsun.model.ch = 256;
  lsun.model.num_head_channels = 64;
  lsun.model.resblock_updown = true;
  lsun.model.learn_sigma = true;
  Config imagenet = published("iddpm", {1, 2, 3, 4}, 3, {16, 8});
  imagenet.model.learn_sigma = true;
  const std::vector<std::tuple<std::string, Config, std::vector<int64_t>, int64_t>> cases = {
      {"ddpm_cifar10", published("unet", {1, 2, 2, 2}, 2, {16}), {3, 32, 32}, 35746307},
      {"ddpm_celeba64", published("unet", {1, 2, 2, 2, 4}, 2, {16}), {3, 64, 64}, 78700803},
      {"ddpm_lsun256", published("unet", {1, 1, 2, 2, 4, 4}, 2, {16}), {3, 256, 256}, 113673219},
      {"iddpm_cifar10", published("iddpm", {1, 2, 2, 2}, 3, {16, 8}), {3, 32, 32}, 52542979},
      {"iddpm_imagenet64", imagenet, {3, 64, 64}, 121063942},
      {"guided_lsun_bedroom256", lsun, {3, 256, 256}, 552814086},
  };
  for (const auto& [name, config, shape, count] : cases) {
    EXPECT_EQ(reference.at(name).get<int64_t>(), count) << name;
    EXPECT_EQ(count_parameters(*make_network(config, shape)), count) << name;
  }
}

// Each shipped config of a published setting builds the network its checkpoint holds.
TEST(PublishedNetwork, ShippedConfigsBuildThePublishedNetworks) {
  std::ifstream in(reference_file("parameter_counts.json"));
  const json reference = json::parse(in);
  const std::vector<std::tuple<std::string, std::string, int64_t>> configs = {
      {"cifar10_ddpm", "ddpm_cifar10", 32},   {"cifar10_ls", "iddpm_cifar10", 32},
      {"cifar10_cs", "iddpm_cifar10", 32},    {"celeba64", "ddpm_celeba64", 64},
      {"imagenet64", "iddpm_imagenet64", 64}, {"lsun_bedroom", "ddpm_lsun256", 256}};
  for (const auto& [file, name, size] : configs) {
    const Config config = load_config(std::string(OCM_CONFIG_DIR) + "/published/" + file + ".yaml");
    EXPECT_EQ(count_parameters(*make_network(config, {3, size, size})),
              reference.at(name).get<int64_t>())
        << file;
  }
}

}  // namespace
}  // namespace ocm::diffusion
