// Where a training invocation starts: fresh, or from a checkpoint, and how.
#pragma once

#include <string>

#include "checkpoints/checkpoint.h"
#include "common/config.h"
#include "trainer/run.h"

namespace ocm::trainer {

enum class ResumeKind {
  kFresh,           // no checkpoint: the score phase from step 0
  kContinueScore,   // a score-phase checkpoint: continue it, then the OCM phase
  kContinueOcm,     // an OCM-phase checkpoint of this config: continue its head
  kNewHeadOnTrunk,  // an OCM-phase checkpoint whose config differs only in model.head
};

struct ResumePlan {
  ResumeKind kind = ResumeKind::kFresh;
  std::string path;                    // the checkpoint, unless kFresh
  checkpoints::Checkpoint checkpoint;  // its contents, unless kFresh
};

// How `checkpoint` (read from `where`) continues a run of `config`. Decided from the configs'
// values: a checkpoint written with other model or diffusion settings is refused with a UserError
// that lists them, except for a change of model.head alone (Note [another head on a finished
// trunk]).
ResumeKind resume_kind(const checkpoints::Checkpoint& checkpoint, const Config& config,
                       const std::string& where);

// Rank 0 picks the checkpoint (`resume_path`, else the newest valid one of the run), every rank
// loads the same one. Counts the skipped steps it recorded into `run`.
ResumePlan plan_resume(Run& run, const std::string& resume_path);

}  // namespace ocm::trainer
