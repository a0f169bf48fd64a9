// The paper's workflow on a tiny published-layout network: `ocm import` of a torch.save file
// written by PyTorch, the OCM phase on 2 ranks, `ocm eval` at K = 5, and `ocm export` read back
// by torch.load into the PyTorch reference; and the bad inputs of `ocm import`, each exit 2 with
// a message and no run directory.
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "checkpoints/safetensors.h"
#include "common/files.h"
#include "eval/trained_model.h"
#include "tests/support/datasets.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace ocm {
namespace {

using test::Outcome;
using test::run_command;

std::string reference(const std::string& name) {
  return std::string(OCM_REFERENCE_DIR) + "/ddpm_simple_head" + name;
}

// The reference case's network (tests/reference/make_reference.py), on 8x8 grey images.
const char kConfig[] = R"(
model: {kind: unet, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [4],
        dropout: 0.0, head: simple}
phases:
  score: {steps: 1000, batch_size: 8}
  ocm: {steps: 3, batch_size: 8}
checkpoint: {every: 3}
log: {rank_files: false}
)";

double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  return (ours.to(torch::kFloat64) - reference.to(torch::kFloat64)).abs().max().item<double>() /
         reference.abs().max().item<double>();
}

class Import : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_.emplace("ocm-import");
    test::write_ramp_images(path("data"), 32, 16, 5);
    std::ofstream(path("config.yaml")) << kConfig << "data: {path: " << path("data") << "}\n";
  }
  static void TearDownTestSuite() { root_.reset(); }
  static std::string path(const std::string& name) { return root_->join(name); }

  static Outcome ocm(const std::string& args) {
    return run_command(std::string(OCM_BINARY) + " " + args);
  }
  static Outcome import(const std::string& source, const std::string& run,
                        const std::string& extra = "") {
    return ocm("import " + source + " --config " + path("config.yaml") + " --out " + path(run) +
               " " + extra);
  }

  // `ocm export` of the run, loaded by torch.load into the reference networks (strict names and
  // shapes), computes the eps and h our networks compute on the reference case's inputs.
  static void expect_export_matches_pytorch(const std::string& run, const std::string& reference) {
    const std::string exported = path(run + ".pt"), theirs_path = path(run + ".torch.safetensors");
    const Outcome out = ocm("export " + path(run) + " --out " + exported);
    ASSERT_EQ(out.exit_code, 0) << out.output;
    const Outcome loaded = run_command(std::string(OCM_PYTHON3) + " " + OCM_SOURCE_DIR +
                                       "/tests/reference/check_export.py " + exported + " " +
                                       reference + " " + theirs_path);
    ASSERT_EQ(loaded.exit_code, 0) << loaded.output;
    const checkpoints::TensorMap theirs = checkpoints::read_safetensors(theirs_path).tensors;
    const checkpoints::TensorMap ref = checkpoints::read_safetensors(reference).tensors;
    const eval::TrainedModel model = eval::load_trained_model(path(run), torch::kCPU);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = ref.at("x").to(torch::kFloat32);
    for (int64_t i = 0; i < x.size(0); ++i) {
      const auto [eps, h] =
          model.denoiser->eps_and_h(x.narrow(0, i, 1), ref.at("t")[i].item<int64_t>());
      EXPECT_LT(relative_error(eps, theirs.at("eps").narrow(0, i, 1)), 1e-5) << i;
      EXPECT_LT(relative_error(h, theirs.at("h").narrow(0, i, 1)), 1e-5) << i;
    }
  }

 private:
  static std::optional<test::TempDir> root_;
};
std::optional<test::TempDir> Import::root_;

// The imported run's EMA trunk computes the reference's eps. The weights are stored in float32,
// so the match is to float32 rounding (the float64 match is published_networks_test's).
TEST_F(Import, ImportedRunReproducesTheReferenceNetwork) {
  const Outcome out = import(reference(".model_and_ema.pt"), "run_ema", "--key ema");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(files::exists(path("run_ema/import.json")));
  const eval::TrainedModel model = eval::load_trained_model(path("run_ema"), torch::kCPU);
  EXPECT_EQ(model.phase, "score");
  EXPECT_EQ(model.step, 1000);
  const checkpoints::TensorMap ref =
      checkpoints::read_safetensors(reference(".safetensors")).tensors;
  torch::NoGradGuard no_grad;
  const torch::Tensor eps = model.denoiser->eps(ref.at("x").to(torch::kFloat32).narrow(0, 1, 1),
                                                ref.at("t")[1].item<int64_t>());
  EXPECT_LT(relative_error(eps, ref.at("eps").narrow(0, 1, 1)), 1e-4);
}

TEST_F(Import, ThenTheOcmPhaseEvalAndExportBackToPyTorch) {
  ASSERT_EQ(import(reference(".state_dict.pt"), "run").exit_code, 0);
  const Outcome trained = run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY +
                                      " train " + path("run/config.yaml"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("phase ocm: from step 0 of 3"), std::string::npos)
      << trained.output;
  EXPECT_EQ(trained.output.find("phase score:"), std::string::npos) << trained.output;
  const Outcome evaluated = ocm("eval " + path("run") +
                                " --steps 5 --sampler ddpm --cov fixed-small,ocm --metric nll "
                                "--nll-samples 8 --batch 8");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_TRUE(files::exists(path("run/eval/results.md")));

  expect_export_matches_pytorch("run", reference(".safetensors"));
}

// improved DDPM's ImageNet-64 setting at reduced width (the reference's iddpm_imagenet case):
// learned sigma, cosine schedule over 4000 steps, read from a .safetensors file.
const char kLearnedSigmaConfig[] = R"(
diffusion: {schedule: cosine, num_timesteps: 4000}
model: {kind: iddpm, ch: 32, ch_mult: [1, 2, 3], num_res_blocks: 2, attn_resolutions: [8, 4],
        num_heads: 4, use_scale_shift_norm: true, dropout: 0.0, learn_sigma: true, head: simple}
phases:
  score: {steps: 1500000, batch_size: 4}
  ocm: {steps: 2, batch_size: 4}
checkpoint: {every: 2}
log: {rank_files: false}
)";

TEST_F(Import, LearnedSigmaNetworkEvaluatesItsOwnVarianceBesideOcm) {
  test::write_ramp_images(path("data16"), 8, 8, 6, 16, 3);
  std::ofstream(path("learned.yaml"))
      << kLearnedSigmaConfig << "data: {path: " << path("data16") << "}\n";
  const std::string source = std::string(OCM_REFERENCE_DIR) + "/iddpm_imagenet.weights.safetensors";
  const Outcome imported =
      ocm("import " + source + " --config " + path("learned.yaml") + " --out " + path("learned"));
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  const eval::TrainedModel model = eval::load_trained_model(path("learned"), torch::kCPU);
  const checkpoints::TensorMap ref =
      checkpoints::read_safetensors(std::string(OCM_REFERENCE_DIR) + "/iddpm_imagenet.safetensors")
          .tensors;
  {
    torch::NoGradGuard no_grad;
    const auto [eps, v] = model.denoiser->eps_and_variance(
        ref.at("x").to(torch::kFloat32).narrow(0, 2, 1), ref.at("t")[2].item<int64_t>());
    EXPECT_LT(relative_error(eps, ref.at("eps").narrow(0, 2, 1)), 1e-4);
    EXPECT_LT(relative_error(v, ref.at("variance").narrow(0, 2, 1)), 1e-4);
  }
  const Outcome trained = ocm("train " + path("learned/config.yaml"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const Outcome evaluated = ocm("eval " + path("learned") +
                                " --steps 5 --sampler ddpm --cov learned,ocm --metric nll "
                                "--nll-samples 4 --batch 4");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  const std::string report = test::read_text(path("learned/eval/results.md"));
  EXPECT_NE(report.find("learned"), std::string::npos) << report;
  EXPECT_NE(report.find("ocm"), std::string::npos) << report;
  expect_export_matches_pytorch("learned",
                                std::string(OCM_REFERENCE_DIR) + "/iddpm_imagenet.safetensors");
  // A network without learned sigma has no variance to sample with.
  ASSERT_EQ(import(reference(".state_dict.pt"), "no_sigma").exit_code, 0);
  const Outcome refused = ocm("sample " + path("no_sigma") +
                              " --cov learned --steps 3 -n 2 --out " + path("refused.h5"));
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("has no learned variance"), std::string::npos) << refused.output;
}

struct BadImport {
  std::string name;
  std::string source;  // a reference file suffix
  std::string extra;   // more arguments
  std::vector<std::string> message;
};

class ImportRefuses : public Import, public ::testing::WithParamInterface<BadImport> {};

TEST_P(ImportRefuses, WithExitTwoAMessageAndNoRunDirectory) {
  const BadImport& bad = GetParam();
  const std::string run = "bad_" + bad.name;
  const Outcome out = import(reference(bad.source), run, bad.extra);
  EXPECT_EQ(out.exit_code, 2) << out.output;
  for (const std::string& part : bad.message)
    EXPECT_NE(out.output.find(part), std::string::npos) << part << "\n" << out.output;
  EXPECT_FALSE(files::exists(path(run)));
}

INSTANTIATE_TEST_SUITE_P(
    , ImportRefuses,
    ::testing::Values(
        BadImport{"Legacy",
                  ".legacy.pt",
                  "",
                  {"ddpm_simple_head.legacy.pt", "legacy torch.save", "torch.save(torch.load("}},
        BadImport{"NotACheckpoint", ".not_a_checkpoint.pt", "", {"not a PyTorch checkpoint"}},
        BadImport{"TwoStateDicts",
                  ".model_and_ema.pt",
                  "",
                  {"holds 2 state dicts", "ema (", "model (", "--key"}},
        BadImport{"UnknownKey", ".ddim_list.pt", "--key 2", {"no state dict `2`", "0 (", "4 ("}},
        BadImport{"AnotherWidth",
                  ".state_dict.pt",
                  "--set model.ch=64",
                  {"ddpm_simple_head.state_dict.pt", "mismatch(es)",
                   "shape of conv_in.weight: the file has [32, 1, 3, 3], the config's model "
                   "[64, 1, 3, 3]"}},
        BadImport{"AnotherDepth",
                  ".state_dict.pt",
                  "--set model.ch_mult=[1,2,2]",
                  {"missing down.2.block.0.norm1.weight [64]"}},
        BadImport{"AnotherFamily",
                  ".state_dict.pt",
                  "--set model.kind=iddpm",
                  {"missing time_embed.0.weight", "unexpected temb.dense.0.weight"}}),
    [](const auto& info) { return info.param.name; });

// More score steps than the import's: the imported weights train on, with a fresh Adam (the
// import holds no optimizer state), before the OCM phase.
TEST_F(Import, ImportedTrunkCanTrainFurther) {
  ASSERT_EQ(import(reference(".state_dict.pt"), "further").exit_code, 0);
  const Outcome trained = ocm("train " + path("further/config.yaml") +
                              " --set phases.score.steps=1002 --set phases.ocm.steps=1");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("Adam starts afresh"), std::string::npos) << trained.output;
  EXPECT_NE(trained.output.find("phase score: from step 1000 of 1002"), std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find("phase ocm: from step 0 of 1"), std::string::npos)
      << trained.output;
}

TEST_F(Import, RefusesARunDirectoryThatHoldsCheckpoints) {
  ASSERT_EQ(import(reference(".state_dict.pt"), "taken").exit_code, 0);
  const Outcome again = import(reference(".state_dict.pt"), "taken");
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("already holds checkpoints"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace ocm
