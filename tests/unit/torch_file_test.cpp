// Reading torch.save files as PyTorch wrote them (tests/reference/make_reference.py writes the
// same trunk in each container layout) and matching them to our parameters.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "checkpoints/published.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/torch_file.h"
#include "common/error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::checkpoints {
namespace {

std::string reference(const std::string& name) {
  return std::string(OCM_REFERENCE_DIR) + "/ddpm_simple_head" + name;
}

// The trunk weights every container holds, from the reference's own file.
TensorMap expected_weights() {
  TensorMap out;
  for (const auto& [name, tensor] : read_safetensors(reference(".safetensors")).tensors) {
    if (name.rfind("trunk/", 0) == 0)
      out[name.substr(6)] = tensor;
  }
  return out;
}

void expect_weights(const PublishedWeights& weights, torch::ScalarType type) {
  const TensorMap expected = expected_weights();
  ASSERT_EQ(weights.tensors.size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    ASSERT_TRUE(weights.tensors.count(name)) << name;
    const torch::Tensor& read = weights.tensors.at(name);
    EXPECT_EQ(read.scalar_type(), type) << name;
    EXPECT_TRUE(torch::equal(read, tensor.to(type))) << name;
  }
}

TEST(TorchFile, ReadsAStateDict) {
  const PublishedWeights weights = read_published_weights(reference(".state_dict.pt"), "");
  EXPECT_EQ(weights.key, "");
  expect_weights(weights, torch::kFloat64);
}

TEST(TorchFile, PicksTheNamedStateDictOfAContainer) {
  expect_weights(read_published_weights(reference(".model_and_ema.pt"), "ema"), torch::kFloat64);
  // "module." prefixes (DataParallel) are dropped.
  expect_weights(read_published_weights(reference(".model_and_ema.pt"), "model"), torch::kFloat64);
  // The DDIM code's [state, optimizer, epoch, step, ema]: the optimizer state is not a candidate.
  expect_weights(read_published_weights(reference(".ddim_list.pt"), "4"), torch::kFloat64);
  expect_weights(read_published_weights(reference(".ddim_list.pt"), "0"), torch::kFloat64);
}

TEST(TorchFile, HalfPrecisionTensorsKeepTheirType) {
  expect_weights(read_published_weights(reference(".half.pt"), ""), torch::kFloat16);
}

TEST(TorchFile, SeveralStateDictsNeedAKeyAndTheMessageListsThem) {
  test::expect_user_error([] { read_published_weights(reference(".ddim_list.pt"), ""); },
                          {"holds 2 state dicts", "0 (", "4 (", "--key"});
  test::expect_user_error([] { read_published_weights(reference(".model_and_ema.pt"), "emma"); },
                          {"no state dict `emma`", "ema (", "model ("});
}

TEST(TorchFile, RefusesLegacyFilesWithTheResaveCommand) {
  test::expect_user_error(
      [] { read_torch_file(reference(".legacy.pt")); },
      {reference(".legacy.pt"), "legacy torch.save file", "torch.save(torch.load("});
}

TEST(TorchFile, RefusesFilesThatAreNotCheckpoints) {
  test::expect_user_error([] { read_torch_file(reference(".not_a_checkpoint.pt")); },
                          {"is not a PyTorch checkpoint"});
  test::expect_user_error([] { read_torch_file("/nonexistent/model.pt"); },
                          {"/nonexistent/model.pt", "cannot be opened"});
}

TEST(TorchFile, RefusesATruncatedArchive) {
  test::TempDir dir("ocm-torch-file");
  const std::string path = dir.join("cut.pt");
  const auto size = std::filesystem::file_size(reference(".state_dict.pt"));
  std::filesystem::copy_file(reference(".state_dict.pt"), path);
  std::filesystem::resize_file(path, size / 2);
  test::expect_user_error([&] { read_torch_file(path); }, {path});
}

TEST(TorchFile, WritesWhatItReadsBack) {
  test::TempDir dir("ocm-torch-file");
  const std::string path = dir.join("out.pt");
  const torch::Tensor a = torch::randn({3, 4});
  const torch::Tensor b = torch::arange(5, torch::kInt64);
  write_torch_file(path, {"layer.weight", "layer.steps"}, {a, b});
  const PublishedWeights back = read_published_weights(path, "");
  ASSERT_EQ(back.tensors.size(), 2u);
  EXPECT_TRUE(torch::equal(back.tensors.at("layer.weight"), a));
  EXPECT_TRUE(torch::equal(back.tensors.at("layer.steps"), b));
}

TEST(CopyPublished, ListsEveryMismatchAndCopiesNothing) {
  PublishedWeights weights;
  weights.tensors = {{"conv.weight", torch::ones({4, 3})},
                     {"conv.bias", torch::ones({5})},
                     {"extra.weight", torch::ones({2})}};
  NamedTensors ours{{"conv.weight", "conv.bias", "norm.weight"},
                    {torch::zeros({4, 3}), torch::zeros({4}), torch::zeros({4})}};
  test::expect_user_error(
      [&] { copy_published(weights, ours, {}, "model.pt"); },
      {"model.pt", "3 mismatch(es)", "missing norm.weight [4]", "unexpected extra.weight [2]",
       "conv.bias: the file has [5], the config's model [4]"});
  EXPECT_EQ(ours.tensors[0].sum().item<double>(), 0.0);  // nothing copied

  weights.tensors.at("conv.bias") = torch::ones({4});
  const auto left = copy_published(weights, ours, {{"norm."}, {"extra."}}, "model.pt");
  EXPECT_EQ(left, std::vector<std::string>{"norm.weight"});
  EXPECT_EQ(ours.tensors[0].sum().item<double>(), 12.0);
}

}  // namespace
}  // namespace ocm::checkpoints
