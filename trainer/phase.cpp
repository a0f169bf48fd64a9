#include "trainer/phase.h"

#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/seeding.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "trainer/precision.h"

namespace ocm::trainer {
namespace {

// LibTorch's generator starts from a different seed in every process, so initial weights are
// drawn from the run seed (a run is reproducible) and then broadcast from rank 0 (every rank
// starts from the same weights even if a library draws differently on some host).
void seed_initialization(const Run& run, uint64_t phase_number) {
  torch::manual_seed(derive_seed({static_cast<uint64_t>(RandomPurpose::kInitialization),
                                  static_cast<uint64_t>(run.config.run.seed), phase_number}));
}

// `module` on the run's device and memory layout, in train or eval mode.
void place(const Run& run, torch::nn::Module& module, bool training) {
  module.to(run.device);
  if (run.channels_last)
    use_channels_last(module);
  module.train(training);
}

// The phase's trainable weights (restored from `resume`, or rank 0's broadcast), its Adam
// state and its EMA.
void start_optimization(Run& run, Phase& phase, const TensorMap* resume, const std::string& where) {
  phase.parameters = checkpoints::named_parameters(*phase.trained);
  if (resume != nullptr)
    checkpoints::load_tensors(phase.model_prefix, *resume, phase.parameters, where);
  else
    dist::broadcast_parameters(phase.parameters.tensors, run.communicator);
  phase.adam = std::make_unique<Adam>(phase.parameters, *phase.config);
  phase.ema = std::make_unique<Ema>(phase.parameters, phase.config->ema);
  if (resume != nullptr) {
    if (Adam::stored_in(*resume))
      phase.adam->load(*resume, where);
    else
      spdlog::info("{} holds no optimizer state (an imported trunk): Adam starts afresh", where);
    phase.ema->load(phase.ema_prefix, *resume, where);
  }
}

// Timestep and noise of each sample (Note [per-sample randomness]).
std::pair<torch::Tensor, torch::Tensor> draw_t_and_noise(const Run& run, const torch::Tensor& x0,
                                                         diffusion::SampleRandom& random) {
  const torch::Tensor t = random.integers(1, run.schedule.num_timesteps() + 1, run.device);
  return {t, random.normal(run.sample.shape, x0.options())};
}

}  // namespace

Phase score_phase(Run& run, int64_t end, const TensorMap* resume, const std::string& where) {
  Phase phase;
  phase.name = "score";
  phase.config = &run.config.phases.score;
  phase.end = end;
  seed_initialization(run, 1);
  phase.trained = diffusion::make_network(run.config, run.sample.shape);
  place(run, *phase.trained, /*training=*/true);
  phase.model_prefix = checkpoints::prefix::kModel;
  phase.ema_prefix = checkpoints::prefix::kEma;
  start_optimization(run, phase, resume, where);
  auto trunk = diffusion::as_trunk(phase.trained);
  phase.loss = [&run, trunk](const torch::Tensor& x0, diffusion::SampleRandom& random) {
    const auto [t, noise] = draw_t_and_noise(run, x0, random);
    return diffusion::eps_matching_loss(*trunk, run.schedule, x0, t, noise);
  };
  return phase;
}

Phase ocm_phase(Run& run, int64_t begin, const std::vector<torch::Tensor>& trunk_weights,
                const TensorMap* resume, const std::string& where) {
  Phase phase;
  phase.name = "ocm";
  phase.config = &run.config.phases.ocm;
  phase.begin = begin;
  phase.end = begin + run.config.phases.ocm.steps;
  auto trunk_network = diffusion::make_network(run.config, run.sample.shape);
  place(run, *trunk_network, /*training=*/false);
  {
    torch::NoGradGuard no_grad;
    const auto trunk_parameters = trunk_network->parameters();
    for (size_t i = 0; i < trunk_parameters.size(); ++i) {
      trunk_parameters[i].copy_(trunk_weights.at(i));
      trunk_parameters[i].set_requires_grad(false);
    }
  }
  seed_initialization(run, 2);
  std::shared_ptr<diffusion::Head> head = diffusion::make_head(run.config.model, run.sample.shape);
  place(run, *head, /*training=*/true);
  phase.trained = head;
  phase.model_prefix = checkpoints::prefix::kHead;
  phase.ema_prefix = checkpoints::prefix::kHeadEma;
  start_optimization(run, phase, resume, where);
  auto trunk = diffusion::as_trunk(trunk_network);
  const int64_t probes = run.config.phases.ocm.probes;
  phase.loss = [&run, trunk, head, probes](const torch::Tensor& x0,
                                           diffusion::SampleRandom& random) {
    const auto [t, noise] = draw_t_and_noise(run, x0, random);
    std::vector<torch::Tensor> draws;
    for (int64_t m = 0; m < probes; ++m)
      draws.push_back(random.rademacher(run.sample.shape, x0.options()));
    return diffusion::ocm_loss(*trunk, *head, run.schedule, x0, t, noise, torch::stack(draws));
  };
  const NamedTensors trunk_named = checkpoints::named_parameters(*trunk_network);
  phase.save = [trunk_named, begin](TensorMap& out) {
    checkpoints::save_tensors(checkpoints::prefix::kTrunk, trunk_named, out);
    checkpoints::write_counter(out, checkpoints::kPhaseBegin, begin);
  };
  return phase;
}

std::vector<torch::Tensor> trunk_of(const Run& run, const TensorMap& checkpoint,
                                    const std::string& prefix, const std::string& where) {
  const NamedTensors trunk =
      checkpoints::named_parameters(*diffusion::make_network(run.config, run.sample.shape));
  checkpoints::load_tensors(prefix, checkpoint, trunk, where);
  return trunk.tensors;
}

void save_phase(Run& run, Phase& phase, int64_t completed_steps) {
  if (run.rank != 0)
    return;
  const auto start = Clock::now();
  checkpoints::Checkpoint c;
  c.step = completed_steps;
  c.phase = phase.name;
  c.config_hash = run.config_hash;
  c.config_yaml = run.config_yaml;
  c.world_size = run.world;
  checkpoints::save_tensors(phase.model_prefix, phase.parameters, c.tensors);
  phase.ema->save(phase.ema_prefix, c.tensors);
  phase.adam->save(c.tensors);
  if (phase.save)
    phase.save(c.tensors);
  checkpoints::write_counter(c.tensors, checkpoints::kSkippedSteps, run.skipped);
  checkpoints::write_counter(c.tensors, checkpoints::kGenerator,
                             static_cast<int64_t>(run.generator));
  checkpoints::save_sample_shape(run.sample, c.tensors);
  // The score phase's last checkpoint is the trained trunk: kept, so that another head can be
  // trained on it (Note [another head on a finished trunk]).
  const checkpoints::Retention retention{run.config.checkpoint.keep_last,
                                         run.config.checkpoint.keep_every,
                                         {run.config.phases.score.steps}};
  run.writer.save(run.checkpoint_dir, std::move(c), retention,
                  run.fault.write_hook(run.rank, completed_steps));
  spdlog::info(
      "checkpoint of step {}: training paused {:.3f} s; the file is written in the "
      "background",
      completed_steps, seconds_since(start));
}

// Note [EMA horizon]
// The weights sampled with are the EMA, and an EMA whose half-life is a large share of the phase
// still averages in the early, poorly trained weights. On the Fashion-MNIST reference run, decay
// 0.999 (half-life 693 steps) over a 3000-step phase made eps_theta's error at t = 1000 three
// times that of the raw weights, and its Gamma_t so small that the analytic c_t at t = 500 was
// 0.89 against a realised (x0 - x0_hat)^2 of 0.16 (`ocm covariance`). Every covariance built on
// that trunk then adds too much noise. EDM keeps the half-life near 5-10% of the images seen;
// beyond a quarter of the phase we warn, since short runs are where this bites.
void announce_phase(const Run& run, const Phase& phase, int64_t start) {
  const int64_t batch = phase.config->batch_size;
  spdlog::info(
      "phase {}: from step {} of {}, {} trainable parameters, global batch {} ({} per rank)",
      phase.name, start - phase.begin, phase.end - phase.begin,
      diffusion::count_parameters(*phase.trained), batch, batch / run.world);
  const double half_life = std::log(0.5) / std::log(phase.config->ema);
  const auto steps = static_cast<double>(phase.end - phase.begin);
  if (half_life > 0.25 * steps) {
    spdlog::warn(
        "phases.{}.ema = {} has a half-life of {:.0f} steps, {:.0f}% of this {}-step phase: the "
        "EMA weights will still carry the early ones. Lower it (e.g. {:.4f} for a half-life of "
        "10%) or train longer.",
        phase.name, phase.config->ema, half_life, 100 * half_life / steps,
        static_cast<int64_t>(steps), std::pow(0.5, 1 / (0.1 * steps)));
  }
}

}  // namespace ocm::trainer
