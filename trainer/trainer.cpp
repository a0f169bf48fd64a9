#include "trainer/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "common/error.h"
#include "common/files.h"
#include "common/log.h"
#include "common/seeding.h"
#include "common/sha256.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "diffusion/networks.h"
#include "diffusion/objectives.h"
#include "diffusion/random.h"
#include "diffusion/schedule.h"
#include "dist/reducer.h"
#include "dist/watchdog.h"
#include "trainer/fault_injection.h"
#include "trainer/metrics.h"
#include "trainer/optimizer.h"
#include "trainer/precision.h"
#include "trainer/stop_request.h"

namespace ocm::trainer {

torch::Device training_device(const Config& config, const dist::Topology& topology) {
  const bool cuda = torch::cuda::is_available();
  if (config.dist.device == "cuda" && !cuda) {
    throw UserError("dist.device", "is cuda, but this build or machine has no CUDA device",
                    "cpu or auto", "`ocm --version` says whether CUDA was built in.");
  }
  if (config.dist.device == "cpu" || !cuda)
    return torch::Device(torch::kCPU);
  // Each rank sees either every GPU of its node (mpirun) or only its own (srun
  // --gpus-per-task sets CUDA_VISIBLE_DEVICES per task); both map to local rank mod count.
  const int64_t gpus = static_cast<int64_t>(torch::cuda::device_count());
  if (gpus > 1 && topology.local_size > gpus) {
    throw UserError(
        "dist.device",
        std::to_string(topology.local_size) + " ranks on this node share " + std::to_string(gpus) +
            " GPUs",
        "at most one rank per GPU (NCCL cannot put two ranks on one device)",
        "Start one task per GPU (e.g. srun --ntasks-per-node=" + std::to_string(gpus) + ").");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(topology.local_rank % gpus));
}

namespace {

using Clock = std::chrono::steady_clock;
using TensorMap = std::map<std::string, torch::Tensor>;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The settings a checkpoint's tensors depend on; resuming with others is refused.
const std::vector<std::string> kModelSections = {"model", "diffusion"};

std::string config_hash(const Config& config) {
  const std::string values = config_values(config, kModelSections);
  Sha256 hash;
  hash.update(reinterpret_cast<const uint8_t*>(values.data()), values.size());
  return hash.hex_digest();
}

// What both phases share.
struct Run {
  const Config& config;
  dist::Communicator& communicator;
  int rank;
  int world;
  torch::Device device;
  bool bf16;  // Note [bf16 autocast]
  bool channels_last;
  std::string checkpoint_dir;
  std::string config_yaml;
  std::string config_hash;
  data::Dataset dataset;
  std::vector<int64_t> sample_shape;
  diffusion::Schedule schedule;
  dist::Watchdog watchdog;
  Fault fault;
  std::unique_ptr<MetricsLog> metrics;  // rank 0 only
  int64_t skipped = 0;                  // non-finite steps, over the whole run
};

// One phase's trainable state and objective.
struct Phase {
  std::string name;
  const PhaseConfig* config = nullptr;
  int64_t begin = 0;  // global step at which the phase started
  int64_t end = 0;
  std::shared_ptr<torch::nn::Module> trained;
  std::string model_prefix;  // checkpoint names of the trained weights and of their EMA
  std::string ema_prefix;
  NamedTensors parameters;
  std::unique_ptr<Adam> adam;
  std::unique_ptr<Ema> ema;
  // The loss of samples x0 whose per-sample draws come from `random`.
  std::function<torch::Tensor(const torch::Tensor& x0, diffusion::SampleRandom& random)> loss;
  // Every tensor the phase needs to continue, by checkpoint name.
  std::function<void(TensorMap&)> save;
};

std::vector<int64_t> sample_shape_of(const data::Manifest& manifest) {
  const auto& e = manifest.element_shape;
  if (manifest.kind == "images")
    return {e[2], e[0], e[1]};  // stored [H, W, C]; the networks take [C, H, W]
  return e;
}

void check_batch(const PhaseConfig& phase, const std::string& section, int world) {
  if (phase.batch_size % world != 0) {
    throw UserError(section + ".batch_size",
                    "is " + std::to_string(phase.batch_size) + ", which " + std::to_string(world) +
                        " ranks cannot share equally",
                    "a multiple of the world size " + std::to_string(world));
  }
}

// LibTorch's generator starts from a different seed in every process, so initial weights are
// drawn from the run seed (a run is reproducible) and then broadcast from rank 0 (every rank
// starts from the same weights even if a library draws differently on some host).
void seed_initialization(const Run& run, const std::string& phase) {
  torch::manual_seed(
      derive_seed({static_cast<uint64_t>(RandomPurpose::kInitialization),
                   static_cast<uint64_t>(run.config.run.seed), phase == "score" ? 1u : 2u}));
}

// The phase's trainable weights (restored from `resume`, or rank 0's broadcast), its Adam
// state and its EMA.
void start_optimization(Run& run, Phase& phase, const TensorMap* resume, const std::string& where) {
  phase.parameters = named_parameters(*phase.trained);
  if (resume != nullptr)
    load_tensors(phase.model_prefix, *resume, phase.parameters, where);
  else
    dist::broadcast_parameters(phase.parameters.tensors, run.communicator);
  phase.adam = std::make_unique<Adam>(phase.parameters, *phase.config);
  phase.ema = std::make_unique<Ema>(phase.parameters, phase.config->ema);
  if (resume != nullptr) {
    phase.adam->load(*resume, where);
    phase.ema->load(phase.ema_prefix, *resume, where);
  }
}

Phase score_phase(Run& run, int64_t end, const TensorMap* resume, const std::string& where) {
  Phase phase;
  phase.name = "score";
  phase.config = &run.config.phases.score;
  phase.begin = 0;
  phase.end = end;
  seed_initialization(run, "score");
  phase.trained = diffusion::make_network(run.config.model, run.sample_shape);
  phase.trained->to(run.device);
  if (run.channels_last)
    use_channels_last(*phase.trained);
  phase.trained->train();
  phase.model_prefix = "model";
  phase.ema_prefix = "ema";
  start_optimization(run, phase, resume, where);
  auto trunk = diffusion::as_trunk(phase.trained);
  const int64_t n = run.schedule.num_timesteps();
  phase.loss = [&run, trunk, n](const torch::Tensor& x0, diffusion::SampleRandom& random) {
    const torch::Tensor t = diffusion::to_device_nonblocking(
        random.integers(1, n + 1), torch::TensorOptions().device(run.device).dtype(torch::kInt64));
    const torch::Tensor noise = random.normal(run.sample_shape, x0.options());
    return diffusion::eps_matching_loss(*trunk, run.schedule, x0, t, noise);
  };
  return phase;
}

// The OCM phase. Its trunk is a copy of the score network holding `trunk_weights` (the score
// phase's EMA), frozen and in eval mode, so the target is the Hessian of the EMA model's score.
Phase ocm_phase(Run& run, int64_t begin, const std::vector<torch::Tensor>& trunk_weights,
                const TensorMap* resume, const std::string& where) {
  Phase phase;
  phase.name = "ocm";
  phase.config = &run.config.phases.ocm;
  phase.begin = begin;
  phase.end = begin + run.config.phases.ocm.steps;
  auto trunk_network = diffusion::make_network(run.config.model, run.sample_shape);
  trunk_network->to(run.device);
  if (run.channels_last)
    use_channels_last(*trunk_network);
  trunk_network->eval();
  {
    torch::NoGradGuard no_grad;
    const auto trunk_parameters = trunk_network->parameters();
    for (size_t i = 0; i < trunk_parameters.size(); ++i) {
      trunk_parameters[i].copy_(trunk_weights.at(i));
      trunk_parameters[i].set_requires_grad(false);
    }
  }
  seed_initialization(run, "ocm");
  std::shared_ptr<diffusion::Head> head = diffusion::make_head(run.config.model, run.sample_shape);
  head->to(run.device);
  if (run.channels_last)
    use_channels_last(*head);
  head->train();
  phase.trained = head;
  phase.model_prefix = "head";
  phase.ema_prefix = "head_ema";
  start_optimization(run, phase, resume, where);
  auto trunk = diffusion::as_trunk(trunk_network);
  const int64_t n = run.schedule.num_timesteps();
  const int64_t probes = run.config.phases.ocm.probes;
  phase.loss = [&run, trunk, head, n, probes](const torch::Tensor& x0,
                                              diffusion::SampleRandom& random) {
    const torch::Tensor t = diffusion::to_device_nonblocking(
        random.integers(1, n + 1), torch::TensorOptions().device(run.device).dtype(torch::kInt64));
    const torch::Tensor noise = random.normal(run.sample_shape, x0.options());
    std::vector<torch::Tensor> draws;
    for (int64_t m = 0; m < probes; ++m)
      draws.push_back(random.rademacher(run.sample_shape, x0.options()));
    return diffusion::ocm_loss(*trunk, *head, run.schedule, x0, t, noise, torch::stack(draws));
  };
  const NamedTensors trunk_named = named_parameters(*trunk_network);
  phase.save = [trunk_named, begin](TensorMap& out) {
    save_tensors("trunk", trunk_named, out);
    out["counters/phase_begin"] = torch::tensor({begin}, torch::kInt64);
  };
  return phase;
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
  save_tensors(phase.model_prefix, phase.parameters, c.tensors);
  phase.ema->save(phase.ema_prefix, c.tensors);
  phase.adam->save(c.tensors);
  if (phase.save)
    phase.save(c.tensors);
  c.tensors["counters/skipped_steps"] = torch::tensor({run.skipped}, torch::kInt64);
  // What sampling needs without the dataset at hand.
  c.tensors["data/sample_shape"] = torch::tensor(run.sample_shape, torch::kInt64);
  c.tensors["data/images"] =
      torch::tensor({int64_t{run.dataset.manifest().kind == "images"}}, torch::kInt64);
  const std::string path = checkpoints::save_checkpoint(
      run.checkpoint_dir, c,
      // The score phase's last checkpoint is the trained trunk: kept, so that another head
      // can be trained on it (Note [another head on a finished trunk]).
      {run.config.checkpoint.keep_last,
       run.config.checkpoint.keep_every,
       {run.config.phases.score.steps}});
  spdlog::info("checkpoint {} written in {:.2f} s", path, seconds_since(start));
}

// Note [EMA horizon]
// The weights sampled with are the EMA, and an EMA whose half-life is a large share of the phase
// still averages in the early, poorly trained weights. On the Fashion-MNIST reference run, decay
// 0.999 (half-life 693 steps) over a 3000-step phase made eps_theta's error at t = 1000 three
// times that of the raw weights, and its Gamma_t so small that the analytic c_t at t = 500 was
// 0.89 against a realised (x0 - x0_hat)^2 of 0.16 (`ocm covariance`). Every covariance built on
// that trunk then adds too much noise. EDM keeps the half-life near 5-10% of the images seen;
// beyond a quarter of the phase we warn, since short runs are where this bites.
void warn_if_ema_outlives_phase(const Phase& phase) {
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

// Every rank compares a SHA-256 of its trainable parameters with rank 0's.
void check_identical_parameters(Run& run, const Phase& phase, int64_t step) {
  Sha256 hash;
  for (const auto& p : phase.parameters.tensors) {
    const torch::Tensor cpu = p.detach().cpu().contiguous();
    hash.update(static_cast<const uint8_t*>(cpu.data_ptr()), cpu.nbytes());
  }
  const std::string mine = hash.hex_digest();
  torch::Tensor digest = torch::empty({static_cast<int64_t>(mine.size())}, torch::kUInt8);
  std::memcpy(digest.data_ptr(), mine.data(), mine.size());
  {
    auto armed = run.watchdog.arm("the parameter check at step " + std::to_string(step));
    digest = digest.to(run.device);
    run.communicator.broadcast(digest, 0);
    digest = digest.cpu();
  }
  const std::string reference(static_cast<const char*>(digest.data_ptr()), mine.size());
  if (reference != mine) {
    throw std::runtime_error("rank " + std::to_string(run.rank) +
                             " holds parameters that differ from rank 0's after step " +
                             std::to_string(step) + " (dist.check_every)");
  }
}

TrainResult run_phase(Run& run, Phase& phase, int64_t start) {
  const Config& config = run.config;
  const PhaseConfig& settings = *phase.config;
  if (start >= phase.end)
    return TrainResult::kFinished;
  spdlog::info(
      "phase {}: from step {} of {}, {} trainable parameters, global batch {} ({} per rank)",
      phase.name, start - phase.begin, phase.end - phase.begin,
      diffusion::count_parameters(*phase.trained), settings.batch_size,
      settings.batch_size / run.world);
  warn_if_ema_outlives_phase(phase);
  const int64_t share = settings.batch_size / run.world;
  const int64_t micro = settings.micro_batch == 0 ? share : std::min(settings.micro_batch, share);
  data::GlobalBatchSampler sampler(run.dataset.size(config.data.split), settings.batch_size,
                                   static_cast<uint64_t>(config.run.seed));
  data::LoaderOptions loader_options;
  loader_options.split = config.data.split;
  loader_options.start_step = start;
  loader_options.rank = run.rank;
  loader_options.world = run.world;
  loader_options.threads = static_cast<int>(config.data.loader_threads);
  loader_options.horizontal_flip = config.data.horizontal_flip;
  loader_options.seed = static_cast<uint64_t>(config.run.seed);
  loader_options.pin_memory = run.device.is_cuda();
  data::Loader loader(run.dataset, sampler, loader_options);
  dist::GradientReducer reducer(phase.parameters.tensors, run.communicator,
                                static_cast<int64_t>(config.dist.bucket_mb * (1 << 20)));
  const auto seed = static_cast<uint64_t>(config.run.seed);

  Interval interval;
  int64_t bad_in_a_row = 0;
  double lr = 0;
  for (int64_t step = start; step < phase.end; ++step) {
    set_log_step(step);
    const auto step_start = Clock::now();
    const double wait_before = loader.wait_seconds();
    if (run.fault.at(run.rank, step)) {
      if (run.fault.kind == "throw")
        throw std::runtime_error("injected fault (OCM_FAULT) at step " + std::to_string(step));
      if (run.fault.kind == "stall") {
        spdlog::warn("injected stall (OCM_FAULT) at step {}", step);
        for (;;)
          std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
    // Dropout draws from LibTorch's generator: seeded per step and rank, so a resumed run
    // repeats them exactly (Note [per-sample randomness] covers everything else).
    torch::manual_seed(
        derive_seed({static_cast<uint64_t>(RandomPurpose::kTraining), seed,
                     static_cast<uint64_t>(step), static_cast<uint64_t>(run.rank), 0xd09}));
    const data::Batch batch = loader.next();
    torch::Tensor x0 = batch.data.to(run.device, /*non_blocking=*/true);
    if (run.channels_last && x0.dim() == 4)
      x0 = x0.contiguous(torch::MemoryFormat::ChannelsLast);
    for (auto& p : phase.parameters.tensors)
      p.mutable_grad().reset();
    // Stays on the device: the step's one host synchronisation is reading `scalars` below.
    torch::Tensor local_loss = torch::zeros({}, x0.options().dtype(torch::kFloat64));
    for (int64_t first = 0; first < share; first += micro) {
      const int64_t n = std::min(micro, share - first);
      reducer.accumulate(first + n < share);
      const std::vector<int64_t> positions(batch.positions.begin() + first,
                                           batch.positions.begin() + first + n);
      diffusion::SampleRandom random(seed, RandomPurpose::kTraining, positions,
                                     static_cast<uint64_t>(step));
      torch::Tensor loss;
      {
        const Bf16Autocast autocast(run.bf16);
        loss = phase.loss(x0.narrow(0, first, n), random) *
               (static_cast<double>(n) / static_cast<double>(share));
      }
      if (run.fault.at(run.rank, step) && run.fault.kind == "nan")
        loss = loss * std::numeric_limits<double>::quiet_NaN();
      loss.backward();
      local_loss += loss.detach().to(torch::kFloat64);
    }
    const auto reduce_start = Clock::now();
    torch::Tensor scalars;
    {
      // Reading the sums back is the step's one host synchronisation, so it is watched too.
      auto armed = run.watchdog.arm("the gradient all-reduce of step " + std::to_string(step));
      reducer.finish();
      // The averaged gradient is the same on every rank, so its squared norm, summed over the
      // ranks with the loss and the stop flags, comes back as world times itself.
      const torch::Tensor stop_flag =
          torch::full({}, stop_requested() != 0 ? 1.0 : 0.0, local_loss.options());
      scalars =
          torch::stack({local_loss, stop_flag, gradient_norm_squared(phase.parameters.tensors)});
      run.communicator.sum_async(scalars)->wait();
      scalars = scalars.cpu();
    }
    interval.reduce_seconds += seconds_since(reduce_start);
    const double loss = scalars[0].item<double>() / run.world;
    const bool stop = scalars[1].item<double>() > 0;
    const double norm = std::sqrt(scalars[2].item<double>() / run.world);
    lr = learning_rate(settings, step - phase.begin);
    if (!std::isfinite(norm) || !std::isfinite(loss)) {
      ++run.skipped;
      ++bad_in_a_row;
      spdlog::warn(
          "step {}: non-finite {} ({}); step skipped on every rank ({} in a row, {} in all)", step,
          std::isfinite(loss) ? "gradient" : "loss", std::isfinite(loss) ? norm : loss,
          bad_in_a_row, run.skipped);
      if (bad_in_a_row >= config.run.max_bad_steps) {
        throw RunEnded(kExitDiverged,
                       std::to_string(bad_in_a_row) +
                           " steps in a row had a non-finite loss or gradient (run.max_bad_steps); "
                           "training has diverged. The checkpoints in " +
                           run.checkpoint_dir +
                           " are intact: lower the learning rate or raise grad_clip, then rerun.");
      }
    } else {
      bad_in_a_row = 0;
      if (settings.grad_clip > 0 && norm > settings.grad_clip)
        scale_gradients(phase.parameters.tensors, settings.grad_clip / (norm + 1e-6));
      phase.adam->step(lr);
      phase.ema->update(phase.parameters.tensors);
      interval.loss_sum += loss;
      interval.last_grad_norm = norm;
    }

    const int64_t completed = step + 1;
    interval.steps += 1;
    interval.samples += settings.batch_size;
    interval.wait_seconds += loader.wait_seconds() - wait_before;
    interval.seconds += seconds_since(step_start);
    if (run.rank == 0 &&
        ((completed - phase.begin) % config.log.every == 0 || completed == phase.end || stop)) {
      interval.steps = std::max<int64_t>(interval.steps, 1);
      run.metrics->write({completed, phase.name, completed - phase.begin, phase.end - phase.begin,
                          lr, run.skipped, interval, run.device});
      interval = Interval{};
    } else if (run.rank != 0 && (completed - phase.begin) % config.log.every == 0) {
      interval = Interval{};
    }
    if (config.dist.check_every > 0 && completed % config.dist.check_every == 0)
      check_identical_parameters(run, phase, completed);
    if (completed % config.checkpoint.every == 0 || completed == phase.end || stop)
      save_phase(run, phase, completed);
    if (stop) {
      auto armed = run.watchdog.arm("the barrier after the stop checkpoint");
      run.communicator.barrier();
      spdlog::info("stopped after step {} on request; rerun the same command to resume", completed);
      return TrainResult::kStopped;
    }
  }
  set_log_step(-1);
  return TrainResult::kFinished;
}

std::optional<checkpoints::Checkpoint> find_resume_point(Run& run, const TrainOptions& options,
                                                         std::string* path) {
  // Rank 0 chooses (verifying newest first); the others load the checkpoint it chose.
  int64_t chosen = -1;
  std::optional<checkpoints::Checkpoint> found;
  if (run.rank == 0) {
    if (!options.resume_path.empty()) {
      *path = options.resume_path;
      found = checkpoints::load_checkpoint(options.resume_path);
    } else if (auto newest = checkpoints::load_newest_valid(run.checkpoint_dir)) {
      *path = newest->path;
      found = std::move(newest->checkpoint);
    }
    if (found)
      chosen = found->step;
  }
  if (run.world > 1) {
    torch::Tensor step = torch::tensor({chosen}, torch::kInt64).to(run.device);
    {
      auto armed = run.watchdog.arm("choosing the checkpoint to resume from");
      run.communicator.broadcast(step, 0);
      step = step.cpu();
    }
    chosen = step.item<int64_t>();
    if (run.rank != 0 && chosen >= 0) {
      *path = options.resume_path.empty() ? checkpoints::checkpoint_path(run.checkpoint_dir, chosen)
                                          : options.resume_path;
      found = checkpoints::load_checkpoint(*path);
    }
  }
  if (!found)
    return std::nullopt;
  if (found->config_hash != run.config_hash) {
    // Note [another head on a finished trunk]
    // The trunk does not depend on model.head, so a checkpoint whose config differs only there
    // is accepted: a new run directory resumed from it trains another head on the same trunk
    // without retraining it. From a score-phase checkpoint that is the ordinary path; from an
    // OCM-phase one, train() starts the OCM phase over on the checkpoint's trunk, with a fresh
    // head, exactly as if it had resumed from the end of the score phase. Every other model or
    // diffusion key must match.
    std::vector<std::string> differences;
    try {
      differences = config_differences(parse_config(found->config_yaml, *path + " (its config)"),
                                       run.config, kModelSections);
    } catch (const UserError&) {
      differences = {"(its recorded config cannot be read by this version)"};
    }
    const bool head_only =
        differences.size() == 1 && differences.front().rfind("model.head:", 0) == 0;
    if (!head_only) {
      std::string listed;
      for (const auto& line : differences)
        listed += "\n  " + line;
      throw UserError(*path, "was written with different model or diffusion settings:" + listed,
                      "the settings of the run that wrote it",
                      "Resume with the original config, or choose a new run.dir for a new model.");
    }
    spdlog::info("{}: {}; training a new head on its trunk", *path, differences.front());
  }
  if (found->world_size != run.world) {
    spdlog::info("resuming a run written by {} ranks on {} ranks (the global batch is unchanged)",
                 found->world_size, run.world);
  }
  const auto skipped = found->tensors.find("counters/skipped_steps");
  if (skipped != found->tensors.end())
    run.skipped = skipped->second.item<int64_t>();
  spdlog::info("resuming from {} (step {}, phase {})", *path, found->step, found->phase);
  return found;
}

void prepare_run_directory(Run& run) {
  const std::string& dir = run.config.run.dir;
  init_logging(
      {run.config.log.level, run.rank, run.config.log.rank_files ? files::join(dir, "logs") : ""});
  if (run.rank == 0) {
    const std::string error = files::create_directories(run.checkpoint_dir);
    if (!error.empty()) {
      throw UserError(dir, "cannot be created (" + error + ")",
                      "a writable run directory (run.dir)");
    }
    // The config of the latest invocation; each checkpoint also records the one that wrote it.
    const std::string path = files::join(dir, "config.yaml");
    const std::string temporary = path + ".tmp";
    {
      std::ofstream out(temporary, std::ios::trunc);
      out << run.config_yaml;
      if (!out.flush())
        throw UserError(temporary, "could not be written", "a writable run directory");
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0)
      throw UserError(path, "could not be replaced", "a writable run directory");
    run.metrics = std::make_unique<MetricsLog>(files::join(dir, "metrics.jsonl"));
  }
  auto armed = run.watchdog.arm("the barrier after preparing the run directory");
  run.communicator.barrier();
}

}  // namespace

TrainResult train(const Config& config, const TrainOptions& options,
                  dist::Communicator& communicator, const dist::Topology& topology) {
  const torch::Device device = training_device(config, topology);
  const bool bf16 = uses_bf16(config, device);
  const int world = communicator.world_size();
  check_batch(config.phases.score, "phases.score", world);
  check_batch(config.phases.ocm, "phases.ocm", world);
  Run run{config,
          communicator,
          communicator.rank(),
          world,
          device,
          bf16,
          config.dist.channels_last,
          files::join(config.run.dir, "checkpoints"),
          to_yaml(config),
          config_hash(config),
          data::Dataset(config.data.path),
          {},
          diffusion::Schedule(config.diffusion.schedule, config.diffusion.num_timesteps),
          dist::Watchdog(config.dist.timeout_s),
          fault_from_environment(),
          nullptr};
  run.sample_shape = sample_shape_of(run.dataset.manifest());
  if (run.dataset.size(config.data.split) < 1)
    throw UserError(config.data.path, "has an empty `" + config.data.split + "` split",
                    "at least one element to train on (data.split)");
  std::string resume_from;
  const std::optional<checkpoints::Checkpoint> resume =
      find_resume_point(run, options, &resume_from);
  prepare_run_directory(run);
  spdlog::info("training {} on {} rank(s), device {} ({}{}), {} compute thread(s) per rank",
               config.run.dir, world, device.str(), bf16 ? "bf16 autocast" : "fp32",
               run.channels_last ? ", channels-last" : "", torch::get_num_threads());
  const int64_t score_steps = config.phases.score.steps;

  if (!resume || resume->phase == "score") {
    const int64_t start = resume ? resume->step : 0;
    Phase score = score_phase(run, std::max(score_steps, start),
                              resume ? &resume->tensors : nullptr, resume_from);
    if (run_phase(run, score, start) == TrainResult::kStopped)
      return TrainResult::kStopped;
    Phase ocm = ocm_phase(run, score.end, score.ema->tensors(), nullptr, "");
    score = Phase{};
    return run_phase(run, ocm, ocm.begin);
  }
  if (resume->phase != "ocm") {
    throw UserError(resume_from, "names phase `" + resume->phase + "`", "score or ocm");
  }
  const auto begin = resume->tensors.find("counters/phase_begin");
  if (begin == resume->tensors.end())
    throw UserError(resume_from, "has no counters/phase_begin", "an OCM-phase checkpoint");
  NamedTensors trunk_names =
      named_parameters(*diffusion::make_network(config.model, run.sample_shape));
  load_tensors("trunk", resume->tensors, trunk_names, resume_from);
  // Only a change of model.head gets this far with a different config hash.
  const bool another_head = resume->config_hash != run.config_hash;
  Phase ocm = ocm_phase(run, begin->second.item<int64_t>(), trunk_names.tensors,
                        another_head ? nullptr : &resume->tensors, resume_from);
  const TrainResult result = run_phase(run, ocm, another_head ? ocm.begin : resume->step);
  if (result == TrainResult::kFinished && resume->step >= ocm.end)
    spdlog::info("{} has finished both phases; nothing to do", config.run.dir);
  return result;
}

}  // namespace ocm::trainer
