// The Inception Score (eval/inception_score.h) and improved precision and recall
// (eval/precision_recall.h): closed forms, and numpy computing the published recipes itself on
// the same numbers (Debian's python3-numpy).
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/files.h"
#include "data/npz.h"
#include "dist/communicator.h"
#include "eval/inception_score.h"
#include "eval/npz_tensors.h"
#include "eval/precision_recall.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace ocm::eval {
namespace {

const auto kDouble = torch::kFloat64;

// Runs a Python program with numpy on `arrays` (loaded as `f`); the numbers it prints.
std::vector<double> numpy_prints(const test::TempDir& tmp,
                                 const std::vector<std::pair<std::string, torch::Tensor>>& arrays,
                                 const std::string& program) {
  std::vector<std::pair<std::string, data::NpyArray>> members;
  for (const auto& [name, tensor] : arrays)
    members.emplace_back(name, npy_of(tensor));
  data::write_npz(tmp.join("inputs.npz"), members);
  const std::string script = tmp.join("reference.py");
  std::ofstream(script) << "import numpy as np\nf = np.load('" << tmp.join("inputs.npz") << "')\n"
                        << program;
  const test::Outcome outcome = test::run_command(std::string(OCM_PYTHON3) + " " + script);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  std::istringstream in(outcome.output);
  std::vector<double> values;
  for (double v; in >> v;)
    values.push_back(v);
  return values;
}

InceptionScore score_of(const torch::Tensor& p, int64_t splits, int64_t batch) {
  InceptionScoreSums sums(p.size(0), splits, p.size(1));
  for (int64_t first = 0; first < p.size(0); first += batch)
    sums.add(p.narrow(0, first, std::min(batch, p.size(0) - first)), first);
  auto single = dist::make_single_process_communicator();
  sums.reduce(*single);
  return sums.score();
}

// Every sample sure of its class and the classes evenly spread within each split: p(y|x) is one
// class, p(y) uniform, so KL = log C and the score is C in every split.
TEST(InceptionScore, ConfidentEvenlySpreadSamplesScoreTheNumberOfClasses) {
  const torch::Tensor labels = torch::arange(40) % 4;
  const torch::Tensor p = torch::one_hot(labels, 4).to(kDouble);
  const InceptionScore s = score_of(p, 2, 7);
  ASSERT_EQ(s.split_scores.size(), 2u);
  for (const double v : s.split_scores)
    EXPECT_NEAR(v, 4.0, 1e-12);
  EXPECT_NEAR(s.mean, 4.0, 1e-12);
  EXPECT_NEAR(s.split_sd, 0.0, 1e-12);
  ASSERT_TRUE(s.standard_error.has_value());
  EXPECT_NEAR(*s.standard_error, 0.0, 1e-12);
}

// Every sample the same distribution: p(y|x) = p(y), KL = 0, the score is 1 however unsure.
TEST(InceptionScore, SamplesThatAllLookAlikeScoreOne) {
  const torch::Tensor p = torch::tensor({0.5, 0.3, 0.2}, kDouble).repeat({30, 1});
  EXPECT_NEAR(score_of(p, 3, 4).mean, 1.0, 1e-12);
}

TEST(InceptionScore, EqualsNumpysSplitsWhateverTheBatches) {
  test::TempDir tmp("ocm-is-test");
  torch::manual_seed(3);
  const torch::Tensor p = torch::softmax(3 * torch::randn({103, 7}, kDouble), 1);
  // StyleGAN3's recipe: split i is p[i N // S : (i + 1) N // S].
  const std::vector<double> expected = numpy_prints(tmp, {{"p", p}}, R"(
p = f['p']; n = len(p); S = 4; scores = []
for i in range(S):
    part = p[i * n // S:(i + 1) * n // S]
    kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
    scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
print(repr(float(np.mean(scores))), repr(float(np.std(scores))))
for v in scores: print(repr(float(v)))
)");
  ASSERT_EQ(expected.size(), 6u);
  for (const int64_t batch : {1, 10, 103}) {
    SCOPED_TRACE(batch);
    const InceptionScore s = score_of(p, 4, batch);
    EXPECT_NEAR(s.mean, expected[0], 1e-12 * expected[0]);
    EXPECT_NEAR(s.split_sd, expected[1], 1e-9);
    ASSERT_EQ(s.split_scores.size(), 4u);
    for (size_t i = 0; i < 4; ++i)
      EXPECT_NEAR(s.split_scores[i], expected[2 + i], 1e-12 * expected[2 + i]);
    EXPECT_NEAR(*s.standard_error, expected[1] / std::sqrt(3.0), 1e-9);
  }
  EXPECT_GT(expected[0], 1.5);  // the samples differ: the score is no trivial 1
}

TEST(InceptionScore, AScoreOfMissingSamplesIsRefused) {
  InceptionScoreSums sums(10, 2, 3);
  sums.add(torch::full({9, 3}, 1.0 / 3, kDouble), 0);
  EXPECT_THROW(sums.score(), std::logic_error);
  EXPECT_THROW(sums.add(torch::full({2, 3}, 1.0 / 3, kDouble), 9), std::logic_error);
}

PrecisionRecall pr_of(const torch::Tensor& real, const torch::Tensor& generated, int64_t k,
                      int64_t rows = 1024) {
  auto single = dist::make_single_process_communicator();
  return precision_recall(real, generated, k, *single, torch::kCPU, rows);
}

TEST(PrecisionRecall, ASetCoversItself) {
  const torch::Tensor x = torch::randn({50, 4}, kDouble);
  const PrecisionRecall pr = pr_of(x, x.clone(), 3);
  EXPECT_EQ(pr.precision, 1.0);
  EXPECT_EQ(pr.recall, 1.0);
}

TEST(PrecisionRecall, FarApartSetsCoverNothing) {
  const torch::Tensor real = torch::randn({40, 3}, kDouble);
  const PrecisionRecall pr = pr_of(real, torch::randn({30, 3}, kDouble) + 100, 3);
  EXPECT_EQ(pr.precision, 0.0);
  EXPECT_EQ(pr.recall, 0.0);
}

// On a line, with k = 1: the real points 0..4 have balls of radius 1. Of the generated 0.5,
// 5 (exactly on the edge of 4's ball: inside), 5.5 and 10, two lie in a ball: precision 1/2.
// The generated balls (radii 4.5, 0.5, 0.5, 4.5) hold all of 0..4 in 0.5's: recall 1.
TEST(PrecisionRecall, BallsReachTheKthNeighbourAndIncludeTheirEdge) {
  const torch::Tensor real = torch::arange(5, kDouble).unsqueeze(1);
  const torch::Tensor generated = torch::tensor({0.5, 5.0, 5.5, 10.0}, kDouble).unsqueeze(1);
  const PrecisionRecall pr = pr_of(real, generated, 1);
  EXPECT_EQ(pr.precision, 0.5);
  EXPECT_EQ(pr.recall, 1.0);
  // With k = 2 the balls of 0 and 4 reach 2 (their second nearest), so 5.5, 1.5 from 4, joins.
  EXPECT_EQ(pr_of(real, generated, 2).precision, 0.75);
}

TEST(PrecisionRecall, EqualsNumpyWhateverTheRowBlocks) {
  test::TempDir tmp("ocm-pr-test");
  torch::manual_seed(11);
  const torch::Tensor real = torch::randn({300, 5}, kDouble);
  const torch::Tensor generated = torch::randn({250, 5}, kDouble) * 0.8 + 0.8;
  // Kynkaanniemi et al.'s definition, with exact differences and a full sort.
  const std::vector<double> expected =
      numpy_prints(tmp, {{"real", real}, {"generated", generated}}, R"(
def d(a, b): return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
def covered(manifold, probes, k=3):
    radii = np.sort(d(manifold, manifold), axis=1)[:, k]
    return float((d(probes, manifold) <= radii[None, :]).any(axis=1).mean())
print(repr(covered(f['real'], f['generated'])), repr(covered(f['generated'], f['real'])))
)");
  ASSERT_EQ(expected.size(), 2u);
  for (const int64_t rows : {7, 1024}) {
    SCOPED_TRACE(rows);
    const PrecisionRecall pr = pr_of(real, generated, 3, rows);
    EXPECT_EQ(pr.precision, expected[0]);
    EXPECT_EQ(pr.recall, expected[1]);
  }
  // Neither is trivial: the sets overlap in part.
  EXPECT_GT(expected[0], 0.05);
  EXPECT_LT(expected[0], 0.95);
  EXPECT_GT(expected[1], 0.05);
  EXPECT_LT(expected[1], 0.95);
}

}  // namespace
}  // namespace ocm::eval
