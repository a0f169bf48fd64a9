#include "trainer/step.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include <torch/torch.h>

#include "common/seeding.h"
#include "common/sha256.h"
#include "diffusion/random.h"
#include "dist/watchdog.h"
#include "trainer/precision.h"
#include "trainer/stop_request.h"

namespace ocm::trainer {
namespace {

// Forward and backward of this rank's share in micro-batches; returns the share's mean loss as a
// float64 scalar that stays on the device.
torch::Tensor accumulate_gradients(Run& run, Phase& phase, dist::GradientReducer& reducer,
                                   const data::Batch& batch, int64_t step, bool poison) {
  const PhaseConfig& settings = *phase.config;
  const int64_t share = settings.batch_size / run.world;
  const int64_t micro = settings.micro_batch == 0 ? share : std::min(settings.micro_batch, share);
  torch::Tensor x0 = batch.data.to(run.device, /*non_blocking=*/true);
  if (run.channels_last && x0.dim() == 4)
    x0 = x0.contiguous(torch::MemoryFormat::ChannelsLast);
  for (auto& p : phase.parameters.tensors)
    p.mutable_grad().reset();
  torch::Tensor local_loss = torch::zeros({}, x0.options().dtype(torch::kFloat64));
  for (int64_t first = 0; first < share; first += micro) {
    const int64_t n = std::min(micro, share - first);
    reducer.accumulate(first + n < share);
    const std::vector<int64_t> positions(batch.positions.begin() + first,
                                         batch.positions.begin() + first + n);
    diffusion::SampleRandom random(static_cast<uint64_t>(run.config.run.seed),
                                   RandomPurpose::kTraining, positions, static_cast<uint64_t>(step),
                                   run.generator);
    torch::Tensor loss;
    {
      const Bf16Autocast autocast(run.bf16);
      loss = phase.loss(x0.narrow(0, first, n), random) *
             (static_cast<double>(n) / static_cast<double>(share));
    }
    if (poison)
      loss = loss * std::numeric_limits<double>::quiet_NaN();
    loss.backward();
    local_loss += loss.detach().to(torch::kFloat64);
  }
  return local_loss;
}

}  // namespace

StepStats train_step(Run& run, Phase& phase, dist::GradientReducer& reducer,
                     const data::Batch& batch, int64_t step) {
  const bool poison = run.fault.inject(run.rank, step);
  const auto seed = static_cast<uint64_t>(run.config.run.seed);
  // Dropout draws from LibTorch's generator: seeded per step and rank, so a resumed run repeats
  // them exactly (Note [per-sample randomness] covers everything else).
  torch::manual_seed(
      derive_seed({static_cast<uint64_t>(RandomPurpose::kTraining), seed,
                   static_cast<uint64_t>(step), static_cast<uint64_t>(run.rank), 0xd09}));
  const torch::Tensor local_loss = accumulate_gradients(run, phase, reducer, batch, step, poison);
  const auto reduce_start = std::chrono::steady_clock::now();
  const dist::CollectivePurpose purpose("the gradients of step " + std::to_string(step));
  reducer.finish();
  // The averaged gradient is the same on every rank, so its squared norm, summed over the ranks
  // with the loss and the stop flags, comes back as world times itself.
  const torch::Tensor stop_flag =
      torch::full({}, stop_requested() != 0 ? 1.0 : 0.0, local_loss.options());
  torch::Tensor scalars =
      torch::stack({local_loss, stop_flag, gradient_norm_squared(phase.parameters.tensors)});
  run.communicator.sum_async(scalars)->wait();
  scalars = scalars.cpu();
  StepStats stats;
  stats.reduce_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - reduce_start).count();
  stats.loss = scalars[0].item<double>() / run.world;
  stats.stop = scalars[1].item<double>() > 0;
  stats.grad_norm = std::sqrt(scalars[2].item<double>() / run.world);
  stats.lr = learning_rate(*phase.config, step - phase.begin);
  stats.applied = std::isfinite(stats.grad_norm) && std::isfinite(stats.loss);
  if (!stats.applied)
    return stats;
  const double clip = phase.config->grad_clip;
  if (clip > 0 && stats.grad_norm > clip)
    scale_gradients(phase.parameters.tensors, clip / (stats.grad_norm + 1e-6));
  phase.adam->step(stats.lr);
  phase.ema->update(phase.parameters.tensors);
  return stats;
}

void check_identical_parameters(Run& run, const Phase& phase, int64_t step) {
  Sha256 hash;
  for (const auto& p : phase.parameters.tensors) {
    const torch::Tensor cpu = p.detach().cpu().contiguous();
    hash.update(static_cast<const uint8_t*>(cpu.data_ptr()), cpu.nbytes());
  }
  const std::string mine = hash.hex_digest();
  torch::Tensor digest = torch::empty({static_cast<int64_t>(mine.size())}, torch::kUInt8);
  std::memcpy(digest.data_ptr(), mine.data(), mine.size());
  digest = digest.to(run.device);
  const dist::CollectivePurpose purpose("the parameter check at step " + std::to_string(step));
  run.communicator.broadcast(digest, 0);
  digest = digest.cpu();
  const std::string reference(static_cast<const char*>(digest.data_ptr()), mine.size());
  if (reference != mine) {
    throw std::runtime_error("rank " + std::to_string(run.rank) +
                             " holds parameters that differ from rank 0's after step " +
                             std::to_string(step) + " (dist.check_every)");
  }
}

}  // namespace ocm::trainer
