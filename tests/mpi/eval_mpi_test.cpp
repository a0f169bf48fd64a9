// Evaluation over 2 MPI ranks against 1: sample bytes, feature statistics, the Inception Score
// and precision/recall.
#include <mpi.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/config.h"
#include "diffusion/networks.h"
#include "diffusion/random.h"
#include "dist/communicator.h"
#include "dist/topology.h"
#include "eval/generate.h"
#include "eval/inception_score.h"
#include "eval/precision_recall.h"
#include "eval/statistics.h"
#include "tests/mpi/mpi_test.h"

namespace ocm::eval {
namespace {

// A small random UNet with an OCM head, identical on every rank.
TrainedModel tiny_model() {
  TrainedModel m;
  m.config = parse_config(R"(
model: {kind: unet, ch: 8, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [4],
        dropout: 0.0, head: simple}
)",
                          "eval_mpi_test");
  m.sample_shape = {1, 8, 8};
  m.images = true;
  m.phase = "ocm";
  torch::manual_seed(5);
  m.network = diffusion::make_network(m.config, m.sample_shape);
  m.head = diffusion::make_head(m.config.model, m.sample_shape);
  torch::NoGradGuard no_grad;
  for (auto& p : m.network->parameters())
    p.normal_(0, 0.1);  // the output layer too, so samples depend on the network
  for (auto& p : m.head->parameters())
    p.normal_(0, 0.1);
  m.network->eval();
  m.head->eval();
  m.schedule = std::make_unique<diffusion::Schedule>("linear", 1000);
  m.denoiser = std::make_unique<diffusion::NetworkDenoiser>(diffusion::as_trunk(m.network), m.head);
  return m;
}

TEST(EvalOverRanks, SampleBytesDoNotDependOnWorldSizeOrBatchSize) {
  const auto& topology = test::topology();
  TrainedModel model = tiny_model();
  for (const std::string sampler : {"ddpm", "ddim"}) {
    SCOPED_TRACE(sampler);
    SamplingSetting setting;
    setting.sampler = sampler;
    setting.eta = sampler == "ddim" ? 0.5 : 0.0;
    setting.cov = "ocm";
    setting.steps = 4;
    constexpr int64_t kCount = 11;
    torch::Tensor alone;
    if (topology.rank == 0)
      alone = generate(model, setting, nullptr, share_of(kCount, 0, 1), 5, 42);
    const torch::Tensor mine =
        generate(model, setting, nullptr, share_of(kCount, topology.rank, 2), 3, 42);
    const std::vector<std::string> parts =
        dist::gather_strings(std::string(static_cast<const char*>(mine.data_ptr()), mine.nbytes()));
    if (topology.rank == 0) {
      const std::string together = parts[0] + parts[1];
      ASSERT_EQ(together.size(), alone.nbytes());
      EXPECT_EQ(together, std::string(static_cast<const char*>(alone.data_ptr()), alone.nbytes()));
      // The images are not all one value: the comparison means something.
      EXPECT_GT(alone.to(torch::kFloat32).std().item<double>(), 5.0);
    }
  }
}

TEST(EvalOverRanks, FeatureStatisticsOfOneAndTwoRanksAgree) {
  const auto& topology = test::topology();
  constexpr int64_t kCount = 1001, kDim = 8;
  auto features_of = [](const std::vector<int64_t>& indices) {
    diffusion::SampleRandom random(3, RandomPurpose::kStatistics, indices);
    return random.normal({kDim}, torch::kFloat64) * 3 + 1;
  };
  auto world = dist::make_cpu_communicator();
  FeatureSums together(kDim);
  together.add(features_of(share_of(kCount, topology.rank, 2)));
  together.reduce(*world);
  if (topology.rank == 0) {
    FeatureSums alone(kDim);
    alone.add(features_of(share_of(kCount, 0, 1)));
    auto single = dist::make_single_process_communicator();
    alone.reduce(*single);
    EXPECT_EQ(together.count(), kCount);
    EXPECT_LE((together.mean() - alone.mean()).abs().max().item<double>(), 1e-10);
    EXPECT_LE((together.covariance() - alone.covariance()).abs().max().item<double>(), 1e-10);
    EXPECT_GT(alone.covariance().trace().item<double>(), kDim * 5.0);  // variance 9 per dim
  }
}

// Class probabilities and features of sample indices, the same whichever rank asks.
torch::Tensor probabilities_of(const std::vector<int64_t>& indices) {
  diffusion::SampleRandom random(4, RandomPurpose::kStatistics, indices);
  return torch::softmax(2 * random.normal({6}, torch::kFloat64), 1);
}

torch::Tensor shifted_features(const std::vector<int64_t>& indices, double shift) {
  diffusion::SampleRandom random(5, RandomPurpose::kStatistics, indices);
  return random.normal({4}, torch::kFloat64) + shift;
}

// Sums of this rank's share of [0, count), added in batches of 4 (which cross split bounds).
InceptionScore inception_score_over(int64_t count, dist::Communicator& communicator) {
  InceptionScoreSums sums(count, 10, 6);
  const auto mine = share_of(count, communicator.rank(), communicator.world_size());
  for (const auto& chunk : batches_of(mine, 4))
    sums.add(probabilities_of(chunk), chunk.front());
  sums.reduce(communicator);
  return sums.score();
}

PrecisionRecall precision_recall_over(int64_t count, dist::Communicator& communicator) {
  const int rank = communicator.rank(), world = communicator.world_size();
  const torch::Tensor real =
      all_shares(shifted_features(share_of(count, rank, world), 0.0), count, communicator);
  // The generated set: other indices, shifted, so that both figures lie inside (0, 1).
  std::vector<int64_t> mine = share_of(count, rank, world);
  for (auto& i : mine)
    i += count;
  const torch::Tensor generated = all_shares(shifted_features(mine, 1.5), count, communicator);
  return precision_recall(real, generated, 3, communicator, torch::kCPU, 16);
}

TEST(EvalOverRanks, InceptionScoreAndPrecisionRecallOfOneAndTwoRanksAgree) {
  const auto& topology = test::topology();
  constexpr int64_t kCount = 203;
  auto world = dist::make_cpu_communicator();
  const InceptionScore together = inception_score_over(kCount, *world);
  const PrecisionRecall pr_together = precision_recall_over(kCount, *world);
  if (topology.rank == 0) {
    auto single = dist::make_single_process_communicator();
    const InceptionScore alone = inception_score_over(kCount, *single);
    EXPECT_NEAR(together.mean, alone.mean, 1e-12 * alone.mean);
    for (size_t i = 0; i < alone.split_scores.size(); ++i)
      EXPECT_NEAR(together.split_scores[i], alone.split_scores[i], 1e-12 * alone.mean);
    EXPECT_GT(alone.mean, 1.2);  // the samples differ: not the trivial score 1
    const PrecisionRecall pr_alone = precision_recall_over(kCount, *single);
    EXPECT_EQ(pr_together.precision, pr_alone.precision);
    EXPECT_EQ(pr_together.recall, pr_alone.recall);
    EXPECT_GT(pr_alone.precision, 0.05);
    EXPECT_LT(pr_alone.precision, 0.95);
    EXPECT_GT(pr_alone.recall, 0.05);
    EXPECT_LT(pr_alone.recall, 0.95);
  }
}

}  // namespace
}  // namespace ocm::eval
