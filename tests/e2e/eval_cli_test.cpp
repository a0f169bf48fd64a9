// `ocm sample`, `ocm eval` and `ocm stats` on a tiny trained run, with the bad inputs users
// give them: each bad one exits 2 with a message and writes nothing.
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "data/npz.h"
#include "eval/statistics.h"
#include "tests/support/datasets.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace ocm {
namespace {

using test::Outcome;
using test::read_text;
using test::run_command;

int count_lines(const std::string& path) {
  std::ifstream in(path);
  int lines = 0;
  for (std::string line; std::getline(in, line);)
    ++lines;
  return lines;
}

// What every test reads: a tiny trained run, its dataset and config, and two feature networks.
// Made once, before the first test, and removed after the last.
class TrainedRun : public ::testing::Environment {
 public:
  void SetUp() override {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    root_.emplace("ocm-eval-cli");
    test::write_ramp_images(path("data"), 48, 16, 3);
    std::ofstream(path("config.yaml")) << R"(
model: {kind: unet, ch: 8, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
phases:
  score: {steps: 4, batch_size: 8}
  ocm: {steps: 2, batch_size: 8}
checkpoint: {every: 4, keep_last: 5}
log: {rank_files: false}
)";
    const Outcome trained =
        run_command(std::string(OCM_BINARY) + " train " + path("config.yaml") +
                    " --set data.path=" + path("data") + " --set run.dir=" + path("run"));
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
    // Feature networks with the Inception export's calling convention.
    torch::jit::Module features("Features");
    features.define(R"(
def forward(self, x, return_features: bool = False):
    return torch.cat([x.float().mean(dim=[2, 3]), x.float().std(dim=[2, 3])], 1)
)");
    features.save(path("features.pt"));
    torch::jit::Module scalar("Scalar");
    scalar.define(R"(
def forward(self, x):
    return x.float().sum()
)");
    scalar.save(path("scalar.pt"));
    torch::jit::Module plain("Plain");  // features, and no classifier output
    plain.define(R"(
def forward(self, x):
    return x.float().mean(dim=[2, 3])
)");
    plain.save(path("plain.pt"));
  }
  void TearDown() override { root_.reset(); }

  static std::string path(const std::string& name) { return root_->join(name); }
  // `text` with each "{root}" replaced by the folder that holds all of the above.
  static std::string expand(std::string text) {
    for (size_t at = text.find("{root}"); at != std::string::npos; at = text.find("{root}", at))
      text.replace(at, 6, root_->path());
    return text;
  }

 private:
  static std::optional<test::TempDir> root_;
};

std::optional<test::TempDir> TrainedRun::root_;
const ::testing::Environment* const kTrainedRun =
    ::testing::AddGlobalTestEnvironment(new TrainedRun);

class EvalCli : public ::testing::Test {
 protected:
  static std::string run_dir() { return path("run"); }
  static std::string path(const std::string& name) { return TrainedRun::path(name); }
  static Outcome ocm(const std::string& args) {
    return run_command(std::string(OCM_BINARY) + " " + args);
  }
  // Where `ocm eval` of the run writes. EvalWritesTheGridAndAddsRowsOfOtherSettings leaves it
  // behind, so every test that looks at it removes it first.
  static std::string eval_dir() { return path("run/eval"); }
};

TEST_F(EvalCli, SampleWritesImagesAndAGridAndNeverOverwrites) {
  Outcome out = ocm("sample " + run_dir() + " --cov ocm --steps 3 -n 10 --out " + path("s.h5") +
                    " --grid " + path("s.png"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(files::is_regular_file(path("s.h5")));
  EXPECT_TRUE(files::is_regular_file(path("s.png")));
  out = ocm("sample " + run_dir() + " -n 3 --out " + path("s.h5"));
  EXPECT_EQ(out.exit_code, 2) << out.output;  // never overwrites
}

// .npz samples in the guided-diffusion evaluator's layout, the same on 1 and 2 ranks; an
// extension ocm does not write is refused before any sampling.
TEST_F(EvalCli, SampleWritesTheFormatItsExtensionNames) {
  const std::string args = "sample " + run_dir() + " --cov ocm --steps 3 -n 10 --out ";
  Outcome out =
      run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY + " " + args + path("two.npz"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  out = ocm(args + path("one.npz"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto two = data::read_npz(path("two.npz"));
  const data::NpyArray& images = two.at("arr_0");
  EXPECT_EQ(images.descr, "|u1");
  EXPECT_EQ(images.shape.size(), 4u);
  EXPECT_EQ(images.shape[0], 10);
  EXPECT_EQ(images.bytes, data::read_npz(path("one.npz")).at("arr_0").bytes);
  out = ocm(args + path("samples.npy"));
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find(".npz (numpy)"), std::string::npos) << out.output;
  EXPECT_FALSE(files::exists(path("samples.npy")));
}

// Arguments of a command ("{root}" stands for TrainedRun's folder) that must exit 2 with
// `message` and write nothing.
struct BadArguments {
  std::string name;
  std::string args;
  std::string message;
};
void PrintTo(const BadArguments& bad, std::ostream* out) {
  *out << bad.name << ": " << bad.args;
}
std::string name_of(const ::testing::TestParamInfo<BadArguments>& info) {
  return info.param.name;
}

class EvalCliBadSample : public EvalCli, public ::testing::WithParamInterface<BadArguments> {};

TEST_P(EvalCliBadSample, ExitsTwoWithAMessageAndWritesNothing) {
  const std::string bad = path("bad-" + GetParam().name + ".h5");
  const Outcome out = ocm("sample " + TrainedRun::expand(GetParam().args) + " --out " + bad);
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find(GetParam().message), std::string::npos) << out.output;
  EXPECT_FALSE(files::exists(bad));
}

INSTANTIATE_TEST_SUITE_P(
    , EvalCliBadSample,
    ::testing::Values(
        BadArguments{"ScoreCheckpointWithOcm",
                     "{root}/run/checkpoints/ckpt-0000000004.h5 --cov ocm", "has no OCM head"},
        BadArguments{"OneStep", "{root}/run --steps 1", "between 2 and N"},
        BadArguments{"ZeroSteps", "{root}/run --steps 0", "between 2 and N"},
        BadArguments{"NoSamples", "{root}/run -n 0", "asks for no samples"},
        BadArguments{"UnknownCovariance", "{root}/run --cov wide", "not a covariance"},
        BadArguments{"DdimWithFixedLarge", "{root}/run --sampler ddim --cov fixed-large",
                     "no DDIM form"},
        BadArguments{"MissingModel", "{root}/nothing-here", "does not exist"},
        BadArguments{"NegativeClipPixel", "{root}/run --clip-pixel -1", "--clip-pixel"}),
    name_of);

TEST_F(EvalCli, SampleOfFewerImagesThanRanksIsRefused) {
  const Outcome out = run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY + " sample " +
                                  run_dir() + " -n 1 --out " + path("bad.h5"));
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find("fewer than the 2 ranks"), std::string::npos) << out.output;
  EXPECT_FALSE(files::exists(path("bad.h5")));
}

const std::string kGrid =
    " --steps 2,3 --sampler ddpm --cov fixed-small,ocm "
    "--nll-samples 8 --batch 4";

class EvalCliBadEval : public EvalCli, public ::testing::WithParamInterface<BadArguments> {
 protected:
  static void SetUpTestSuite() {
    eval::FeatureSums five(5);
    five.add(torch::randn({10, 5}, torch::kFloat64));
    eval::save_statistics(path("five.h5"), eval::statistics_of(five, "five", "five"));
    std::ofstream(path("corrupt.h5")) << "definitely not HDF5";
  }
  void SetUp() override { files::remove_tree(eval_dir()); }
};

TEST_P(EvalCliBadEval, ExitsTwoWithAMessageAndWritesNothing) {
  const std::string args = TrainedRun::expand(GetParam().args);
  const std::string count =
      args.find("--num-samples") == std::string::npos ? " --num-samples 8" : "";
  const Outcome out = ocm("eval " + run_dir() + kGrid + count + " " + args);
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find(GetParam().message), std::string::npos) << out.output;
  EXPECT_FALSE(files::exists(eval_dir()));
}

INSTANTIATE_TEST_SUITE_P(
    , EvalCliBadEval,
    ::testing::Values(
        BadArguments{"ReferenceOfAnotherFeatureSize",
                     "--metric fd --features {root}/features.pt --ref {root}/five.h5",
                     "5-d statistics"},
        BadArguments{"FeaturesThatAreNoMatrix", "--metric fd --features {root}/scalar.pt",
                     "shape [N, D]"},
        BadArguments{"FeaturesThatAreNoTorchScript", "--metric fd --features {root}/config.yaml",
                     "not a TorchScript file"},
        BadArguments{"ReferenceWithoutItsChecksum",
                     "--metric fd --features {root}/features.pt --ref {root}/corrupt.h5",
                     "no checksum file corrupt.h5.sha256"},
        BadArguments{"FidWithoutInception", "--metric fid --features {root}/features.pt",
                     "needs Inception features"},
        BadArguments{"FdWithoutFeatures", "--metric fd", "--features"},
        BadArguments{"OneStep", "--metric nll --steps 1", "between 2 and N"},
        BadArguments{"ZeroSamples", "--metric fd --features {root}/features.pt --num-samples 0",
                     "too small"},
        BadArguments{"NegativeCovarianceScale", "--metric nll --cov-scale -1", "--cov-scale"},
        BadArguments{"NegativeClipPixel", "--metric nll --clip-pixel -1", "--clip-pixel"},
        BadArguments{"ExactWithoutATrueDistribution", "--metric nll --cov exact",
                     "true distribution of"},
        BadArguments{"MmdWithoutATrueDistribution", "--metric mmd", "needs the true distribution"},
        BadArguments{"InceptionScoreOfANetworkThatDoesNotClassify",
                     "--metric is --is-splits 2 --features {root}/plain.pt",
                     "has no classifier output"},
        BadArguments{"NoInceptionScoreSplits",
                     "--metric is --features {root}/features.pt --is-splits 0", "--is-splits"},
        BadArguments{"MoreSplitsThanSamples",
                     "--metric is --features {root}/features.pt --is-splits 9", "--is-splits"},
        BadArguments{"PrecisionRecallOfTooFewSamples",
                     "--metric pr --features {root}/features.pt --num-samples 3",
                     "too small for precision and recall"}),
    name_of);

// Every setting skipped (fixed-large has no DDIM form): refused too, not an empty report.
TEST_F(EvalCli, EvalWithEverySettingSkippedIsRefused) {
  files::remove_tree(eval_dir());
  const Outcome none =
      ocm("eval " + run_dir() + " --steps 2 --sampler ddim --cov fixed-large --metric nll");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("no setting to evaluate"), std::string::npos) << none.output;
  EXPECT_FALSE(files::exists(eval_dir()));
}

TEST_F(EvalCli, EvalWritesTheGridAndAddsRowsOfOtherSettings) {
  const std::string eval_dir = EvalCli::eval_dir();
  files::remove_tree(eval_dir);
  const Outcome out =
      run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY + " eval " + run_dir() + kGrid +
                  " --num-samples 8 --metric fd,nll --features " + path("features.pt"));
  EXPECT_EQ(count_lines(files::join(eval_dir, "results.jsonl")), 8);  // 4 settings x 2 metrics
  for (const char* name : {"results.md", "fd.png", "nll.png", "grids/ddpm-ocm-K3.png",
                           "grids/ddpm-fixed-small-K2.png"}) {
    EXPECT_TRUE(files::exists(files::join(eval_dir, name))) << name;
  }
  const std::string report = read_text(files::join(eval_dir, "results.md"));
  EXPECT_NE(report.find("| ddpm | ocm |"), std::string::npos) << report;
  EXPECT_NE(report.find("features.pt (sha256 "), std::string::npos) << report;
  EXPECT_NE(report.find("else over the n test images"), std::string::npos) << report;

  // Another eta, seed and c_t scale land in rows of their own, beside the first invocation's.
  const Outcome ddim =
      ocm("eval " + run_dir() +
          " --steps 2 --sampler ddim --eta 0.5 --cov ocm --cov-scale 0.5 --metric fd --features " +
          path("features.pt") + " --num-samples 8 --batch 4 --seed 1");
  ASSERT_EQ(ddim.exit_code, 0) << ddim.output;
  std::ifstream jsonl(files::join(eval_dir, "results.jsonl"));
  std::string last;
  for (std::string line; std::getline(jsonl, line);)
    last = line;
  EXPECT_NE(last.find("\"eta\":0.5"), std::string::npos) << last;
  EXPECT_NE(last.find("\"seed\":1"), std::string::npos) << last;
  EXPECT_NE(last.find("\"cov_scale\":0.5"), std::string::npos) << last;
  EXPECT_TRUE(files::exists(files::join(eval_dir, "grids/ddim0.5-ocmx0.5-K2-seed1.png")));
  const std::string after = read_text(files::join(eval_dir, "results.md"));
  EXPECT_NE(after.find("| ddim0.5 | ocm x0.5 | 1 | 8 |"), std::string::npos) << after;
  EXPECT_NE(after.find("| ddpm | ocm | 0 | 8 |"), std::string::npos) << after;

  // The same setting at another sample count is another row, not a replacement.
  const Outcome fewer =
      ocm("eval " + run_dir() + " --steps 2 --sampler ddpm --cov ocm --metric fd --features " +
          path("features.pt") + " --num-samples 6 --batch 4");
  ASSERT_EQ(fewer.exit_code, 0) << fewer.output;
  const std::string last_report = read_text(files::join(eval_dir, "results.md"));
  EXPECT_NE(last_report.find("| ddpm | ocm | 0 | 6 |"), std::string::npos) << last_report;
  EXPECT_NE(last_report.find("| ddpm | ocm | 0 | 8 |"), std::string::npos) << last_report;

  // The paper's sigma clip of 2 pixels is a setting of its own, named so.
  const Outcome clipped =
      ocm("eval " + run_dir() + " --steps 2 --sampler ddpm --cov ocm --metric fd --features " +
          path("features.pt") + " --num-samples 6 --batch 4 --clip-pixel 2");
  ASSERT_EQ(clipped.exit_code, 0) << clipped.output;
  EXPECT_TRUE(files::exists(files::join(eval_dir, "grids/ddpm-ocm-K2-clip2.png")));
  const std::string clip_report = read_text(files::join(eval_dir, "results.md"));
  EXPECT_NE(clip_report.find("| ddpm-clip2 | ocm | 0 | 6 |"), std::string::npos) << clip_report;

  // The bound with x0_hat left unclipped is a row of its own, beside the default bound's.
  const Outcome unclipped =
      ocm("eval " + run_dir() + " --steps 2 --cov ocm --metric nll --nll-samples 8 --batch 4 " +
          "--nll-unclipped");
  ASSERT_EQ(unclipped.exit_code, 0) << unclipped.output;
  const std::string nll_report = read_text(files::join(eval_dir, "results.md"));
  const auto nll_table = nll_report.find("## bits/dim");
  ASSERT_NE(nll_table, std::string::npos) << nll_report;
  EXPECT_NE(nll_report.find("| ddpm | ocm | 0 | 8 |", nll_table), std::string::npos) << nll_report;
  EXPECT_NE(nll_report.find("| ddpm-x0-unclipped | ocm | 0 | 8 |", nll_table), std::string::npos)
      << nll_report;
}

TEST_F(EvalCli, StatsWritesAFileEvalAcceptsAndNeverOverwrites) {
  const std::string stats = path("train-stats.h5");
  Outcome out =
      run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY + " stats " + path("data") +
                  " --features " + path("features.pt") + " --out " + stats);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const eval::FeatureStatistics s = eval::load_statistics(stats);
  EXPECT_EQ(s.count, 48);
  EXPECT_EQ(s.mean.size(0), 6);
  out = ocm("stats " + path("data") + " --features " + path("features.pt") + " --out " + stats);
  EXPECT_EQ(out.exit_code, 2) << out.output;
}

// Reference statistics as EDM's fid.py keeps them, and each setting's samples beside the report.
TEST_F(EvalCli, StatsAsNpzServeAsReferenceAndEvalSavesItsSamples) {
  files::remove_tree(eval_dir());
  Outcome out = ocm("stats " + path("data") + " --features " + path("features.pt") + " --out " +
                    path("train-stats.npz"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto arrays = data::read_npz(path("train-stats.npz"));
  EXPECT_EQ(arrays.at("mu").descr, "<f8");
  EXPECT_EQ(arrays.at("sigma").shape, (std::vector<int64_t>{6, 6}));
  out = ocm("eval " + run_dir() + " --steps 2 --sampler ddpm --cov ocm --metric fd --features " +
            path("features.pt") + " --ref " + path("train-stats.npz") +
            " --num-samples 6 --batch 4 --save-samples");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto samples = data::read_npz(files::join(eval_dir(), "samples/ddpm-ocm-K2.npz"));
  EXPECT_EQ(samples.at("arr_0").shape[0], 6);
  EXPECT_NE(read_text(files::join(eval_dir(), "results.md")).find("train-stats.npz"),
            std::string::npos);
  out = ocm("eval " + run_dir() + " --steps 2 --metric nll --save-samples");
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find("--save-samples"), std::string::npos) << out.output;
}

// Each (setting metric) of results.jsonl and its value.
std::map<std::string, double> values_in(const std::string& results) {
  std::map<std::string, double> values;
  std::ifstream in(results);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    values[j.at("setting").get<std::string>() + " " + j.at("metric").get<std::string>()] =
        j.at("value").get<double>();
  }
  return values;
}

// The Inception Score and precision/recall come out of the FD pass, the same on 1 and 2 ranks,
// and the summary ranks them with higher as better.
TEST_F(EvalCli, InceptionScoreAndPrecisionRecallAreTheSameOnOneAndTwoRanks) {
  const std::string args = " eval " + run_dir() +
                           " --steps 2 --sampler ddpm --cov fixed-small,ocm --metric fd,is,pr "
                           "--num-samples 12 --batch 5 --is-splits 3 --features " +
                           path("features.pt");
  std::map<std::string, double> by_world[2];
  for (const int world : {1, 2}) {
    files::remove_tree(eval_dir());
    const Outcome out = run_command(std::string(OCM_MPIEXEC) + " -np " + std::to_string(world) +
                                    " " + OCM_BINARY + args);
    ASSERT_EQ(out.exit_code, 0) << out.output;
    by_world[world - 1] = values_in(files::join(eval_dir(), "results.jsonl"));
  }
  ASSERT_EQ(by_world[0].size(), 8u);  // 2 settings x (fd, is, precision, recall)
  for (const auto& [key, value] : by_world[0]) {
    SCOPED_TRACE(key);
    ASSERT_EQ(by_world[1].count(key), 1u);
    EXPECT_NEAR(by_world[1][key], value, 1e-9 * std::abs(value));
  }
  const double is = by_world[0]["ddpm-ocm-K2 is"];
  EXPECT_GE(is, 1.0);
  EXPECT_LE(is, 6.0);  // at most the number of classes of a 6-output network
  for (const char* metric : {"precision", "recall"}) {
    const double v = by_world[0][std::string("ddpm-ocm-K2 ") + metric];
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  const std::string summary = read_text(files::join(eval_dir(), "summary.md"));
  EXPECT_NE(summary.find("- is, ddpm, K=2: "), std::string::npos) << summary;
  EXPECT_NE(summary.find(" above "), std::string::npos) << summary;
  EXPECT_NE(read_text(files::join(eval_dir(), "results.md")).find("## Inception Score"),
            std::string::npos);
}

TEST_F(EvalCli, StatsOfASplitTheDatasetLacksIsRefusedAndWritesNothing) {
  const Outcome out = ocm("stats " + path("data") + " --features " + path("features.pt") +
                          " --split val --out " + path("val.h5"));
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_FALSE(files::exists(path("val.h5")));
}

// The exact-answer path end to end on 2 ranks: draws of a mixture, a tiny MLP run on them, and
// eval against the truth with two seeds. A spec that is no mixture exits 2 and writes nothing.
TEST(MixtureCli, EvalComparesARunWithItsExactAnswer) {
  test::TempDir root("ocm-mixture-cli");
  const std::string spec = root.join("spec.json");
  std::ofstream(spec) << R"({"weights": [0.5, 0.5], "means": [[0.5, 0.5], [-0.5, -0.5]],)"
                      << R"( "stds": [[0.1, 0.2], [0.2, 0.1]]})";
  const std::string ocm = OCM_BINARY;
  Outcome out = run_command(ocm + " data prepare mixture --source " + spec + " --count 2000 " +
                            "--test-count 300 --out " + root.join("data"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("drawn from a mixture of 2 Gaussians"), std::string::npos)
      << out.output;
  std::ofstream(root.join("config.yaml")) << R"(
model: {kind: mlp, width: 32, depth: 2, head: mlp}
phases:
  score: {steps: 30, batch_size: 64, lr: 1e-3, ema: 0.9}
  ocm: {steps: 20, batch_size: 64, lr: 1e-3, ema: 0.9}
log: {rank_files: false}
)";
  out = run_command(ocm + " train " + root.join("config.yaml") +
                    " --set data.path=" + root.join("data") + " --set run.dir=" + root.join("run"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  out = run_command(std::string(OCM_MPIEXEC) + " -np 2 " + ocm + " eval " + root.join("run") +
                    " --steps 2,3 --sampler ddpm,ddim --cov fixed-small,ocm,exact " +
                    "--metric mmd,h-error,nll --num-samples 500 --seed 0,1 --nll-samples 100");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  // mmd: 2 samplers x 3 covariances x 2 K x 2 seeds; nll: 3 x 2; h-error: ocm at 2 K.
  EXPECT_EQ(count_lines(root.join("run/eval/results.jsonl")), 24 + 6 + 2);
  const std::string summary = read_text(root.join("run/eval/summary.md"));
  for (const char* line : {"- mmd, ddim, K=2: ", "- mmd, ddpm, K=3: ", "- nll, ddpm, K=2: ",
                           "- h-error, K=3: the ocm head's relative RMS error"})
    EXPECT_NE(summary.find(line), std::string::npos) << line << "\n" << summary;
  const std::string report = read_text(root.join("run/eval/results.md"));
  EXPECT_NE(report.find("| ddpm | exact | 0,1 | 500 |"), std::string::npos) << report;

  std::ofstream(spec) << R"({"weights": [0.5, 0.5], "means": [[0.5], [-0.5]], "stds": [[0.1]]})";
  out = run_command(ocm + " data prepare mixture --source " + spec + " --out " + root.join("bad"));
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find("stds"), std::string::npos) << out.output;
  EXPECT_FALSE(files::exists(root.join("bad")));
}

}  // namespace
}  // namespace ocm
