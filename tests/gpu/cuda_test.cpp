// The CUDA path, on a machine with a GPU (label gpu; built only with a CUDA LibTorch): the NCCL
// communicator, non-blocking host-to-device draws, bf16 autocast and channels-last against the
// CPU's fp32 arithmetic, and a whole `ocm train` run on the GPU.

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "checkpoints/checkpoint.h"
#include "common/config.h"
#include "common/files.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "diffusion/random.h"
#include "diffusion/schedule.h"
#include "dist/communicator.h"
#include "tests/support/datasets.h"
#include "tests/support/temp_dir.h"
#include "trainer/metrics.h"
#include "trainer/precision.h"
#include "trainer/trainer.h"

namespace ocm {
namespace {

const torch::Device kGpu(torch::kCUDA, 0);

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available())
      GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(Cuda, NcclCommunicatorSumsAndBroadcastsInStreamOrder) {
  auto communicator = dist::make_communicator(kGpu, 60);
  ASSERT_EQ(communicator->world_size(), 1);
  for (const auto dtype : {torch::kFloat32, torch::kFloat64, torch::kInt64}) {
    // Written by a kernel on the compute stream just before the collective reads it, and read
    // by another right after wait(): the events must order all three.
    torch::Tensor values =
        torch::arange(1 << 20, torch::TensorOptions().device(kGpu).dtype(dtype)) * 3;
    auto work = communicator->sum_async(values);
    work->wait();
    values.add_(1);
    const torch::Tensor expected = torch::arange(1 << 20, torch::dtype(dtype)) * 3 + 1;
    EXPECT_TRUE(torch::equal(values.cpu(), expected)) << dtype;
  }
  torch::Tensor root = torch::full({7}, 2.5, torch::TensorOptions().device(kGpu));
  communicator->broadcast(root, 0);
  EXPECT_TRUE(torch::equal(root.cpu(), torch::full({7}, 2.5)));
  communicator->barrier();
  EXPECT_THROW(communicator->sum_async(torch::ones({4})), std::logic_error);  // a CPU tensor
}

TEST_F(Cuda, DrawsReachTheDeviceUnchanged) {
  diffusion::SampleRandom on_cpu(5, RandomPurpose::kTraining, {0, 7, 9});
  diffusion::SampleRandom on_gpu(5, RandomPurpose::kTraining, {0, 7, 9});
  const torch::Tensor cpu = on_cpu.normal({3, 8, 8}, torch::dtype(torch::kFloat32));
  const torch::Tensor gpu =
      on_gpu.normal({3, 8, 8}, torch::TensorOptions().device(kGpu).dtype(torch::kFloat32));
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_TRUE(torch::equal(gpu.cpu(), cpu));
}

// Note [counter-based draws]: the kernel and the CPU loop compute one function; only the
// device's double log, sin and cos may differ in their last bits. Consecutive indices (a training
// share) and scattered ones (copied to the device) take different paths into the kernel.
TEST_F(Cuda, PhiloxKernelDrawsWhatTheCpuComputes) {
  const std::vector<std::vector<int64_t>> index_sets = {{100, 101, 102, 103, 104, 105},
                                                        {5, 2, 900, 77}};
  const auto on_device = torch::TensorOptions().device(kGpu).dtype(torch::kFloat32);
  const auto on_host = torch::dtype(torch::kFloat32);
  for (const auto& indices : index_sets) {
    diffusion::SampleRandom cpu(5, RandomPurpose::kTraining, indices, 42,
                                diffusion::Generator::kPhilox);
    diffusion::SampleRandom gpu(5, RandomPurpose::kTraining, indices, 42,
                                diffusion::Generator::kPhilox);
    const torch::Tensor t = gpu.integers(1, 1001, kGpu);
    EXPECT_TRUE(t.is_cuda());
    EXPECT_TRUE(torch::equal(t.cpu(), cpu.integers(1, 1001)));
    const torch::Tensor z = gpu.normal({3, 8, 8}, on_device).cpu();
    EXPECT_LE((z - cpu.normal({3, 8, 8}, on_host)).abs().max().item<float>(), 1e-6);
    EXPECT_TRUE(torch::equal(gpu.rademacher({3, 8, 8}, on_device).cpu(),
                             cpu.rademacher({3, 8, 8}, on_host)));
    EXPECT_TRUE(torch::equal(gpu.uniform({9}, on_device.dtype(torch::kFloat64)).cpu(),
                             cpu.uniform({9}, torch::dtype(torch::kFloat64))));
  }
}

// Relative L2 distance of b from a, over all tensors.
double relative_distance(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double difference = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const torch::Tensor x = a[i].to(torch::kCPU, torch::kFloat64);
    const torch::Tensor y = b[i].to(torch::kCPU, torch::kFloat64);
    difference += (x - y).square().sum().item<double>();
    norm += x.square().sum().item<double>();
  }
  return std::sqrt(difference / norm);
}

struct LossAndGradients {
  double loss = 0;
  std::vector<torch::Tensor> gradients;
};

// One eps-matching loss and its gradients for the same weights, data, timesteps and noise.
LossAndGradients eps_step(const Config& config, const torch::Device& device, bool bf16,
                          bool channels_last) {
  const std::vector<int64_t> shape = {3, 16, 16};
  torch::manual_seed(11);
  auto network = diffusion::make_network(config, shape);
  {
    // Away from the zero-initialised output layer, so the loss depends on every weight.
    torch::NoGradGuard no_grad;
    for (auto& p : network->parameters())
      p.add_(torch::randn_like(p) * 0.05);
  }
  network->to(device);
  if (channels_last)
    trainer::use_channels_last(*network);
  network->train();
  const diffusion::Schedule schedule("linear", 1000);
  diffusion::SampleRandom random(3, RandomPurpose::kTraining, {0, 1, 2, 3, 4, 5, 6, 7});
  const auto options = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  torch::Tensor x0 = random.uniform(shape, options) * 2 - 1;
  if (channels_last)
    x0 = x0.contiguous(torch::MemoryFormat::ChannelsLast);
  const torch::Tensor t = diffusion::to_device_nonblocking(
      torch::tensor({1, 50, 200, 400, 600, 800, 950, 1000}, torch::kInt64),
      options.dtype(torch::kInt64));
  const torch::Tensor noise = random.normal(shape, options);
  auto trunk = diffusion::as_trunk(network);
  torch::Tensor loss;
  {
    const trainer::Bf16Autocast autocast(bf16);
    loss = diffusion::eps_matching_loss(*trunk, schedule, x0, t, noise);
  }
  loss.backward();
  LossAndGradients out;
  out.loss = loss.item<double>();
  for (const auto& p : network->parameters())
    out.gradients.push_back(p.grad().cpu());
  return out;
}

Config small_unet() {
  return parse_config(R"(
model: {kind: unet, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [8],
        dropout: 0.0, head: simple}
)",
                      "cuda_test", {});
}

TEST_F(Cuda, Bf16AutocastAndChannelsLastMatchTheCpusFp32Gradients) {
  const Config config = small_unet();
  const LossAndGradients cpu = eps_step(config, torch::kCPU, false, false);
  const LossAndGradients fp32 = eps_step(config, kGpu, false, false);
  const LossAndGradients nhwc = eps_step(config, kGpu, false, true);
  const LossAndGradients bf16 = eps_step(config, kGpu, true, true);
  const double fp32_error = relative_distance(cpu.gradients, fp32.gradients);
  const double nhwc_error = relative_distance(cpu.gradients, nhwc.gradients);
  const double bf16_error = relative_distance(cpu.gradients, bf16.gradients);
  std::printf("loss cpu %.6f, cuda fp32 %.6f, channels-last %.6f, bf16 %.6f\n", cpu.loss, fp32.loss,
              nhwc.loss, bf16.loss);
  std::printf("gradient relative L2 error vs cpu: fp32 %.2e, channels-last %.2e, bf16 %.2e\n",
              fp32_error, nhwc_error, bf16_error);
  // cuDNN may use TF32 for fp32 convolutions (10-bit mantissa, LibTorch's default); bf16 keeps
  // 8 bits, and its products accumulate in fp32.
  EXPECT_NEAR(fp32.loss, cpu.loss, 2e-3 * cpu.loss);
  EXPECT_NEAR(nhwc.loss, cpu.loss, 2e-3 * cpu.loss);
  EXPECT_NEAR(bf16.loss, cpu.loss, 2e-2 * cpu.loss);
  EXPECT_LT(fp32_error, 1e-2);
  EXPECT_LT(nhwc_error, 1e-2);
  EXPECT_LT(bf16_error, 5e-2);
  // The control: autocast really ran in bf16, so its gradients are not the fp32 ones.
  EXPECT_GT(relative_distance(fp32.gradients, bf16.gradients), 1e-4);
  for (const auto& g : bf16.gradients)
    EXPECT_EQ(g.scalar_type(), torch::kFloat32);
}

TEST_F(Cuda, PeakDeviceMemoryIsReported) {
  EXPECT_EQ(trainer::peak_device_mib(torch::kCPU), 0);
  const torch::Tensor block = torch::empty({64 << 20}, torch::TensorOptions().device(kGpu));
  EXPECT_GE(trainer::peak_device_mib(kGpu), 256);
}

std::vector<nlohmann::json> read_metrics(const std::string& run_dir) {
  std::ifstream in(files::join(run_dir, "metrics.jsonl"));
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST_F(Cuda, TrainRunsBothPhasesInBf16ChannelsLastAndResumes) {
  const test::TempDir tmp("ocm-cuda-test");
  const std::string root = tmp.path();
  const std::string data = files::join(root, "data");
  test::write_ramp_images(data, 64, 0, 7);
  auto make = [&](const std::string& dir, int64_t score_steps) {
    return parse_config(R"(
run: {seed: 3}
model: {kind: unet, ch: 16, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [4],
        dropout: 0.0, head: complex}
phases:
  score: {batch_size: 16, lr: 2e-3, warmup: 2, ema: 0.9}
  ocm: {steps: 4, batch_size: 8, lr: 1e-3, probes: 2, ema: 0.5}
dist: {device: cuda, precision: bf16, channels_last: true}
checkpoint: {every: 3, keep_last: 10}
log: {every: 1, rank_files: false}
)",
                        "cuda_test",
                        {"data.path=" + data, "run.dir=" + dir,
                         "phases.score.steps=" + std::to_string(score_steps)});
  };
  auto communicator = dist::make_communicator(kGpu, 60);
  const std::string straight = files::join(root, "straight");
  ASSERT_EQ(trainer::train(make(straight, 6), {}, *communicator, dist::Topology{}),
            trainer::TrainResult::kFinished);
  const auto lines = read_metrics(straight);
  ASSERT_EQ(lines.size(), 10u);
  for (const auto& line : lines) {
    EXPECT_TRUE(std::isfinite(line.at("loss").get<double>())) << line.dump();
    EXPECT_GT(line.at("peak_device_mb").get<double>(), 0) << line.dump();
    EXPECT_EQ(line.at("skipped").get<int64_t>(), 0);
  }
  const auto last =
      checkpoints::load_checkpoint(files::join(straight, "checkpoints/ckpt-0000000010.h5"));
  EXPECT_EQ(last.phase, "ocm");
  for (const auto& [name, tensor] : last.tensors) {
    if (tensor.is_floating_point())
      EXPECT_EQ(tensor.scalar_type(), torch::kFloat32) << name;
  }

  // The same run's step-3 checkpoint, continued in a new run directory in fp32 and NCHW
  // (checkpoints allow either) ends the score phase near the straight run: much nearer than steps
  // 4-6 moved the weights.
  const std::string resumed = files::join(root, "resumed");
  ASSERT_EQ(trainer::train(make(resumed, 3), {}, *communicator, dist::Topology{}),
            trainer::TrainResult::kFinished);
  Config rest = make(files::join(root, "continued"), 6);
  rest.dist.precision = "fp32";
  rest.dist.channels_last = false;
  trainer::TrainOptions from_step_3;
  from_step_3.resume_path = files::join(resumed, "checkpoints/ckpt-0000000003.h5");
  ASSERT_EQ(trainer::train(rest, from_step_3, *communicator, dist::Topology{}),
            trainer::TrainResult::kFinished);
  auto score_weights = [](const std::string& path) {
    std::vector<torch::Tensor> weights;
    for (const auto& [name, tensor] : checkpoints::load_checkpoint(path).tensors) {
      if (name.rfind("model/", 0) == 0)
        weights.push_back(tensor);
    }
    return weights;
  };
  const auto step3 = score_weights(files::join(straight, "checkpoints/ckpt-0000000003.h5"));
  const auto step6 = score_weights(files::join(straight, "checkpoints/ckpt-0000000006.h5"));
  const auto step6_resumed =
      score_weights(files::join(root, "continued/checkpoints/ckpt-0000000006.h5"));
  ASSERT_FALSE(step6.empty());
  const double moved = relative_distance(step6, step3);
  const double apart = relative_distance(step6, step6_resumed);
  std::printf("score weights: steps 4-6 moved them %.2e; resumed in fp32 ends %.2e away\n", moved,
              apart);
  EXPECT_LT(apart, 0.5 * moved);
}

}  // namespace
}  // namespace ocm
