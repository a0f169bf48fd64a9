// `ocm import`: a published score network as the finished score phase of a run.
#pragma once

#include <string>
#include <vector>

#include "checkpoints/published.h"
#include "common/config.h"

namespace ocm::trainer {

struct ImportRequest {
  std::string source;  // a torch.save file or a .safetensors file
  std::string key;     // which state dict of the file (Note [published state dicts])
  checkpoints::MatchRules rules;
};

struct ImportResult {
  std::string checkpoint;  // the checkpoint written
  int64_t parameters = 0;
  std::vector<std::string> left_initial;  // allowed-missing parameters, at their initial values
};

// Note [imported trunks]
// The OCM paper trains only the head, on published score networks. Importing writes, into the
// config's run.dir, what the score phase would have left after phases.score.steps steps: the
// published weights as both the model and its EMA (the EMA is what the OCM phase and sampling
// use; published checkpoints are EMA weights), no optimizer state (the trainer needs none for
// a finished score phase), the sample shape of the config's dataset, and the config itself, so `ocm
// train CONFIG` goes straight to the OCM phase and `ocm sample/eval/covariance` work on the run.
// import.json records the source file, its SHA-256 and the state dict used. Everything is checked
// before anything is written: a bad source, key, shape or config leaves no run directory behind,
// and a run directory that already holds checkpoints is refused rather than overwritten.
ImportResult import_trunk(const Config& config, const ImportRequest& request);

}  // namespace ocm::trainer
