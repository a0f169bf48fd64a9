#include "trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "dist/reducer.h"
#include "dist/watchdog.h"
#include "trainer/metrics.h"
#include "trainer/phase.h"
#include "trainer/resume.h"
#include "trainer/run.h"
#include "trainer/step.h"

namespace ocm::trainer {
namespace {

// This rank's share of each global batch of the phase, from step `start` on.
struct PhaseData {
  data::GlobalBatchSampler sampler;
  data::Loader loader;

  PhaseData(const Run& run, const PhaseConfig& settings, int64_t start)
      : sampler(run.dataset.size(run.config.data.split), settings.batch_size,
                static_cast<uint64_t>(run.config.run.seed)),
        loader(run.dataset, sampler, options(run, start)) {}

  static data::LoaderOptions options(const Run& run, int64_t start) {
    data::LoaderOptions o;
    o.split = run.config.data.split;
    o.start_step = start;
    o.rank = run.rank;
    o.world = run.world;
    o.threads = static_cast<int>(run.config.data.loader_threads);
    o.horizontal_flip = run.config.data.horizontal_flip;
    o.seed = static_cast<uint64_t>(run.config.run.seed);
    o.pin_memory = run.device.is_cuda();
    return o;
  }
};

// Counts a skipped step; ends the run once run.max_bad_steps come in a row.
void count_skipped_step(Run& run, const StepStats& stats, int64_t step, int64_t* in_a_row) {
  ++run.skipped;
  ++*in_a_row;
  const bool finite_loss = std::isfinite(stats.loss);
  spdlog::warn("step {}: non-finite {} ({}); step skipped on every rank ({} in a row, {} in all)",
               step, finite_loss ? "gradient" : "loss", finite_loss ? stats.grad_norm : stats.loss,
               *in_a_row, run.skipped);
  if (*in_a_row >= run.config.run.max_bad_steps) {
    throw RunEnded(kExitDiverged,
                   std::to_string(*in_a_row) +
                       " steps in a row had a non-finite loss or gradient (run.max_bad_steps); "
                       "training has diverged. The checkpoints in " +
                       run.checkpoint_dir +
                       " are intact: lower the learning rate or raise grad_clip, then rerun.");
  }
}

// Rank 0 writes a metrics line every log.every steps, at the phase's end and on a stop; the
// other ranks only restart their interval.
void log_interval(Run& run, const Phase& phase, int64_t completed, const StepStats& stats,
                  Interval& interval) {
  const bool due = (completed - phase.begin) % run.config.log.every == 0;
  if (run.rank == 0 && (due || completed == phase.end || stats.stop)) {
    interval.steps = std::max<int64_t>(interval.steps, 1);
    run.metrics->write({completed, phase.name, completed - phase.begin, phase.end - phase.begin,
                        stats.lr, run.skipped, interval, run.device});
    interval = Interval{};
  } else if (run.rank != 0 && due) {
    interval = Interval{};
  }
}

TrainResult run_phase(Run& run, Phase& phase, int64_t start) {
  if (start >= phase.end)
    return TrainResult::kFinished;
  announce_phase(run, phase, start);
  PhaseData data(run, *phase.config, start);
  dist::GradientReducer reducer(phase.parameters.tensors, run.communicator,
                                static_cast<int64_t>(run.config.dist.bucket_mb * (1 << 20)));
  Interval interval;
  int64_t bad_in_a_row = 0;
  for (int64_t step = start; step < phase.end; ++step) {
    set_log_step(step);
    const auto step_start = Clock::now();
    const double wait_before = data.loader.wait_seconds();
    const StepStats stats = train_step(run, phase, reducer, data.loader.next(), step);
    if (stats.applied) {
      bad_in_a_row = 0;
      interval.loss_sum += stats.loss;
      interval.last_grad_norm = stats.grad_norm;
    } else {
      count_skipped_step(run, stats, step, &bad_in_a_row);
    }
    const int64_t completed = step + 1;
    interval.steps += 1;
    interval.samples += phase.config->batch_size;
    interval.reduce_seconds += stats.reduce_seconds;
    interval.wait_seconds += data.loader.wait_seconds() - wait_before;
    interval.seconds += seconds_since(step_start);
    log_interval(run, phase, completed, stats, interval);
    if (run.config.dist.check_every > 0 && completed % run.config.dist.check_every == 0)
      check_identical_parameters(run, phase, completed);
    if (completed % run.config.checkpoint.every == 0 || completed == phase.end || stats.stop)
      save_phase(run, phase, completed);
    run.writer.poll();
    if (stats.stop) {
      run.writer.wait();
      const dist::CollectivePurpose purpose("after the stop checkpoint");
      run.communicator.barrier();
      spdlog::info("stopped after step {} on request; rerun the same command to resume", completed);
      return TrainResult::kStopped;
    }
  }
  set_log_step(-1);
  return TrainResult::kFinished;
}

// ocm trains eps-prediction networks: a learned variance output needs improved DDPM's hybrid
// loss, which ocm does not implement, so such a trunk can only be imported.
void check_score_phase_trainable(const Run& run, const ResumePlan& plan) {
  const bool score_left =
      plan.kind == ResumeKind::kFresh || (plan.kind == ResumeKind::kContinueScore &&
                                          plan.checkpoint.step < run.config.phases.score.steps);
  if (run.config.model.learn_sigma && score_left) {
    throw UserError("model.learn_sigma", "is true for a score network still to be trained",
                    "a learned-sigma network imported with `ocm import` (Note [imported trunks])",
                    "Import the published network first, or set learn_sigma: false.");
  }
}

// The score phase from `start` (0, or a score-phase checkpoint's step), then the OCM phase.
TrainResult run_both_phases(Run& run, int64_t start, const ResumePlan& plan) {
  const bool resumed = plan.kind == ResumeKind::kContinueScore;
  if (resumed && start >= run.config.phases.score.steps) {
    // A finished score phase (an imported trunk holds no optimizer state): its EMA is all the
    // OCM phase needs.
    const TensorMap& tensors = plan.checkpoint.tensors;
    Phase ocm = ocm_phase(run, start, trunk_of(run, tensors, checkpoints::prefix::kEma, plan.path),
                          nullptr, "");
    return run_phase(run, ocm, ocm.begin);
  }
  Phase score = score_phase(run, std::max(run.config.phases.score.steps, start),
                            resumed ? &plan.checkpoint.tensors : nullptr, plan.path);
  if (run_phase(run, score, start) == TrainResult::kStopped)
    return TrainResult::kStopped;
  Phase ocm = ocm_phase(run, score.end, score.ema->tensors(), nullptr, "");
  score = Phase{};
  return run_phase(run, ocm, ocm.begin);
}

// The OCM phase on an OCM-phase checkpoint's trunk: its own head continued, or a new one.
TrainResult run_ocm_phase(Run& run, const ResumePlan& plan) {
  const TensorMap& tensors = plan.checkpoint.tensors;
  const int64_t begin = checkpoints::read_counter(tensors, checkpoints::kPhaseBegin, -1);
  if (begin < 0)
    throw UserError(plan.path, "has no counters/phase_begin", "an OCM-phase checkpoint");
  const bool new_head = plan.kind == ResumeKind::kNewHeadOnTrunk;
  Phase ocm = ocm_phase(run, begin, trunk_of(run, tensors, checkpoints::prefix::kTrunk, plan.path),
                        new_head ? nullptr : &tensors, plan.path);
  const TrainResult result = run_phase(run, ocm, new_head ? ocm.begin : plan.checkpoint.step);
  if (result == TrainResult::kFinished && !new_head && plan.checkpoint.step >= ocm.end)
    spdlog::info("{} has finished both phases; nothing to do", run.config.run.dir);
  return result;
}

TrainResult run_plan(Run& run, const ResumePlan& plan) {
  switch (plan.kind) {
    case ResumeKind::kFresh:
      return run_both_phases(run, 0, plan);
    case ResumeKind::kContinueScore:
      return run_both_phases(run, plan.checkpoint.step, plan);
    case ResumeKind::kContinueOcm:
    case ResumeKind::kNewHeadOnTrunk:
      return run_ocm_phase(run, plan);
  }
  throw std::logic_error("unknown resume kind");
}

}  // namespace

TrainResult train(const Config& config, const TrainOptions& options,
                  dist::Communicator& communicator, const dist::Topology& topology) {
  const std::unique_ptr<Run> run = open_run(config, communicator, topology);
  const ResumePlan plan = plan_resume(*run, options.resume_path);
  check_score_phase_trainable(*run, plan);
  prepare_run_directory(*run);
  spdlog::info("training {} on {} rank(s), device {} ({}{}), {} compute thread(s) per rank",
               config.run.dir, run->world, run->device.str(), run->bf16 ? "bf16 autocast" : "fp32",
               run->channels_last ? ", channels-last" : "", torch::get_num_threads());
  const TrainResult result = run_plan(*run, plan);
  run->writer.wait();  // the last checkpoint is complete before the run says it is done
  return result;
}

}  // namespace ocm::trainer
