// `ocm sample`, `ocm eval` and `ocm stats` on a tiny trained run, with the bad inputs users
// give them: each bad one exits 2 with a message and writes nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "eval/statistics.h"
#include "tests/support/datasets.h"
#include "tests/support/process.h"

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

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    root_ = files::join(files::temp_directory(), "ocm-eval-cli-" + std::to_string(getpid()));
    files::remove_tree(root_);
    files::create_directories(root_);
    test::write_ramp_images(files::join(root_, "data"), 48, 16, 3);
    std::ofstream(files::join(root_, "config.yaml")) << R"(
model: {kind: unet, ch: 8, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
phases:
  score: {steps: 4, batch_size: 8}
  ocm: {steps: 2, batch_size: 8}
checkpoint: {every: 4, keep_last: 5}
log: {rank_files: false}
)";
    const Outcome trained = run_command(
        std::string(OCM_BINARY) + " train " + files::join(root_, "config.yaml") +
        " --set data.path=" + files::join(root_, "data") + " --set run.dir=" + run_dir());
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
    // Feature networks with the Inception export's calling convention.
    torch::jit::Module features("Features");
    features.define(R"(
def forward(self, x, return_features: bool = False):
    return torch.cat([x.float().mean(dim=[2, 3]), x.float().std(dim=[2, 3])], 1)
)");
    features.save(files::join(root_, "features.pt"));
    torch::jit::Module scalar("Scalar");
    scalar.define(R"(
def forward(self, x):
    return x.float().sum()
)");
    scalar.save(files::join(root_, "scalar.pt"));
  }
  static void TearDownTestSuite() { files::remove_tree(root_); }

  static std::string run_dir() { return files::join(root_, "run"); }
  static std::string path(const std::string& name) { return files::join(root_, name); }
  static Outcome ocm(const std::string& args) {
    return run_command(std::string(OCM_BINARY) + " " + args);
  }

  static std::string root_;
};

std::string EvalCli::root_;

TEST_F(EvalCli, SampleWritesImagesAndAGridAndRefusesBadRequests) {
  Outcome out = ocm("sample " + run_dir() + " --cov ocm --steps 3 -n 10 --out " + path("s.h5") +
                    " --grid " + path("s.png"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(files::is_regular_file(path("s.h5")));
  EXPECT_TRUE(files::is_regular_file(path("s.png")));

  const std::string score_checkpoint = path("run/checkpoints/ckpt-0000000004.h5");
  struct Bad {
    std::string args;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {score_checkpoint + " --cov ocm", "has no OCM head"},
      {run_dir() + " --steps 1", "between 2 and N"},
      {run_dir() + " --steps 0", "between 2 and N"},
      {run_dir() + " -n 0", "asks for no samples"},
      {run_dir() + " --cov wide", "not a covariance"},
      {run_dir() + " --sampler ddim --cov fixed-large", "no DDIM form"},
      {path("nothing-here"), "does not exist"},
  };
  for (const auto& b : bad) {
    out = ocm("sample " + b.args + " --out " + path("bad.h5"));
    EXPECT_EQ(out.exit_code, 2) << b.args << "\n" << out.output;
    EXPECT_NE(out.output.find(b.message), std::string::npos) << b.args << "\n" << out.output;
    EXPECT_FALSE(files::exists(path("bad.h5"))) << b.args;
  }
  out = ocm("sample " + run_dir() + " -n 3 --out " + path("s.h5"));
  EXPECT_EQ(out.exit_code, 2) << out.output;  // never overwrites
  out = run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY + " sample " + run_dir() +
                    " -n 1 --out " + path("bad.h5"));
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find("fewer than the 2 ranks"), std::string::npos) << out.output;
  EXPECT_FALSE(files::exists(path("bad.h5")));
}

TEST_F(EvalCli, EvalRefusesBadInputsWithoutWritingThenRunsTheGrid) {
  const std::string eval_dir = path("run/eval");
  eval::FeatureSums five(5);
  five.add(torch::randn({10, 5}, torch::kFloat64));
  eval::save_statistics(path("five.h5"), eval::statistics_of(five, "five", "five"));
  std::ofstream(path("corrupt.h5")) << "definitely not HDF5";
  const std::string grid =
      " --steps 2,3 --sampler ddpm --cov fixed-small,ocm "
      "--nll-samples 8 --batch 4";
  struct Bad {
    std::string args;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"--metric fd --features " + path("features.pt") + " --ref " + path("five.h5"),
       "5-d statistics"},
      {"--metric fd --features " + path("scalar.pt"), "shape [N, D]"},
      {"--metric fd --features " + path("config.yaml"), "not a TorchScript file"},
      {"--metric fd --features " + path("features.pt") + " --ref " + path("corrupt.h5"),
       "not an HDF5 file"},
      {"--metric fid --features " + path("features.pt"), "needs Inception features"},
      {"--metric fd", "--features"},
      {"--metric nll --steps 1", "between 2 and N"},
      {"--metric fd --features " + path("features.pt") + " --num-samples 0", "too small"},
      {"--metric nll --cov-scale -1", "--cov-scale"},
  };
  for (const auto& b : bad) {
    const std::string count =
        b.args.find("--num-samples") == std::string::npos ? " --num-samples 8" : "";
    const Outcome out = ocm("eval " + run_dir() + grid + count + " " + b.args);
    EXPECT_EQ(out.exit_code, 2) << b.args << "\n" << out.output;
    EXPECT_NE(out.output.find(b.message), std::string::npos) << b.args << "\n" << out.output;
    EXPECT_FALSE(files::exists(eval_dir)) << b.args;
  }
  // Every setting skipped (fixed-large has no DDIM form): refused too, not an empty report.
  const Outcome none =
      ocm("eval " + run_dir() + " --steps 2 --sampler ddim --cov fixed-large --metric nll");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("no setting to evaluate"), std::string::npos) << none.output;
  EXPECT_FALSE(files::exists(eval_dir));
  const Outcome out =
      run_command(std::string(OCM_MPIEXEC) + " -np 2 " + OCM_BINARY + " eval " + run_dir() + grid +
                  " --num-samples 8 --metric fd,nll --features " + path("features.pt"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(count_lines(files::join(eval_dir, "results.jsonl")), 8);  // 4 settings x 2 metrics
  for (const char* name : {"results.md", "fd.png", "nll.png", "grids/ddpm-ocm-K3.png",
                           "grids/ddpm-fixed-small-K2.png"}) {
    EXPECT_TRUE(files::exists(files::join(eval_dir, name))) << name;
  }
  const std::string report = read_text(files::join(eval_dir, "results.md"));
  EXPECT_NE(report.find("| ddpm | ocm |"), std::string::npos) << report;
  EXPECT_NE(report.find("features.pt (sha256 "), std::string::npos) << report;

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
  out = ocm("stats " + path("data") + " --features " + path("features.pt") + " --split val --out " +
            path("val.h5"));
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_FALSE(files::exists(path("val.h5")));
}

}  // namespace
}  // namespace ocm
