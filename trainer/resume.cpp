#include "trainer/resume.h"

#include <optional>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/layout.h"
#include "common/error.h"
#include "dist/watchdog.h"

namespace ocm::trainer {
namespace {

// Note [another head on a finished trunk]
// The trunk does not depend on model.head, so a checkpoint whose config differs only there is
// accepted: a new run directory resumed from it trains another head on the same trunk without
// retraining it. From a score-phase checkpoint that is the ordinary path (it holds no head); from
// an OCM-phase one, the OCM phase starts over on the checkpoint's trunk with a fresh head, exactly
// as if it had resumed from the end of the score phase. Every other model or diffusion key must
// match.

// The line that names the head's change (as `ocm config` prints it) when the checkpoint's recorded
// config differs from `config` in model.head alone; otherwise throws, listing every difference.
std::string head_difference(const checkpoints::Checkpoint& checkpoint, const Config& config,
                            const std::string& where) {
  std::optional<Config> recorded;
  try {
    recorded = parse_config(checkpoint.config_yaml, where + " (its config)");
  } catch (const UserError&) {
  }
  std::vector<std::string> differences = {"(its recorded config cannot be read by this version)"};
  if (recorded) {
    differences = config_differences(*recorded, config, model_sections());
    recorded->model.head = config.model.head;
    if (!differences.empty() && config_differences(*recorded, config, model_sections()).empty())
      return differences.front();  // the head's line: nothing else differs
    if (differences.empty())
      differences = {"(its config hash differs, but no key does: another version wrote it)"};
  }
  std::string listed;
  for (const auto& line : differences)
    listed += "\n  " + line;
  throw UserError(where, "was written with different model or diffusion settings:" + listed,
                  "the settings of the run that wrote it",
                  "Resume with the original config, or choose a new run.dir for a new model.");
}

}  // namespace

ResumeKind resume_kind(const checkpoints::Checkpoint& checkpoint, const Config& config,
                       const std::string& where) {
  if (checkpoint.phase != "score" && checkpoint.phase != "ocm")
    throw UserError(where, "names phase `" + checkpoint.phase + "`", "score or ocm");
  const std::string head = checkpoint.config_hash == config_hash(config)
                               ? ""
                               : head_difference(checkpoint, config, where);
  const bool new_head = !head.empty();
  if (new_head)
    spdlog::info("{}: {}; training a new head on its trunk", where, head);
  if (checkpoint.phase == "score")
    return ResumeKind::kContinueScore;
  return new_head ? ResumeKind::kNewHeadOnTrunk : ResumeKind::kContinueOcm;
}

namespace {

// Rank 0 chooses (verifying newest first); the others load the checkpoint it chose.
std::optional<checkpoints::Found> choose_checkpoint(Run& run, const std::string& resume_path) {
  int64_t chosen = -1;
  std::optional<checkpoints::Found> found;
  if (run.rank == 0) {
    if (!resume_path.empty())
      found = checkpoints::Found{resume_path, checkpoints::load_checkpoint(resume_path)};
    else
      found = checkpoints::load_newest_valid(run.checkpoint_dir);
    if (found)
      chosen = found->checkpoint.step;
  }
  if (run.world == 1)
    return found;
  const dist::CollectivePurpose purpose("choosing the checkpoint to resume from");
  torch::Tensor step = torch::tensor({chosen}, torch::kInt64).to(run.device);
  run.communicator.broadcast(step, 0);
  chosen = step.cpu().item<int64_t>();
  if (run.rank != 0 && chosen >= 0) {
    const std::string path = resume_path.empty()
                                 ? checkpoints::checkpoint_path(run.checkpoint_dir, chosen)
                                 : resume_path;
    found = checkpoints::Found{path, checkpoints::load_checkpoint(path)};
  }
  return found;
}

// Note [counter-based draws]: a resumed run keeps drawing as it started, whatever the config says
// now, so that resuming stays bitwise; checkpoints from before the choice existed used `stream`.
void resume_generator(Run& run, const ResumePlan& plan) {
  const auto recorded = static_cast<diffusion::Generator>(
      checkpoints::read_counter(plan.checkpoint.tensors, checkpoints::kGenerator,
                                static_cast<int64_t>(diffusion::Generator::kStream)));
  if (recorded != diffusion::Generator::kStream && recorded != diffusion::Generator::kPhilox) {
    throw UserError(plan.path,
                    "records random generator " + std::to_string(static_cast<int64_t>(recorded)),
                    "1 (stream) or 2 (philox), from a checkpoint this version of ocm wrote");
  }
  if (recorded != run.generator) {
    spdlog::info("{} drew with the {} generator; the run goes on with it (run.generator says {})",
                 plan.path, diffusion::generator_name(recorded),
                 diffusion::generator_name(run.generator));
  }
  run.generator = recorded;
}

}  // namespace

ResumePlan plan_resume(Run& run, const std::string& resume_path) {
  std::optional<checkpoints::Found> found = choose_checkpoint(run, resume_path);
  if (!found)
    return {};
  ResumePlan plan{resume_kind(found->checkpoint, run.config, found->path), found->path,
                  std::move(found->checkpoint)};
  if (plan.checkpoint.world_size != run.world) {
    spdlog::info("resuming a run written by {} ranks on {} ranks (the global batch is unchanged)",
                 plan.checkpoint.world_size, run.world);
  }
  run.skipped = checkpoints::read_counter(plan.checkpoint.tensors, checkpoints::kSkippedSteps, 0);
  resume_generator(run, plan);
  spdlog::info("resuming from {} (step {}, phase {})", plan.path, plan.checkpoint.step,
               plan.checkpoint.phase);
  return plan;
}

}  // namespace ocm::trainer
