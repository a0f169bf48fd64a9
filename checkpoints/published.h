// Published weights (torch.save or .safetensors files) matched to our parameter names.
#pragma once

#include <string>
#include <vector>

#include "checkpoints/layout.h"

namespace ocm::checkpoints {

// Note [published state dicts]
// A published checkpoint holds its weights as a state dict (names to tensors), alone or inside
// a container: {'model': ..., 'ema': ...}, {'state_dict': ...}, or the DDIM code's list
// [state, optimizer, epoch, step, ema]. Every dict of tensors within three levels is a
// candidate, named by its path ("ema", "4", "" for the file itself), except inside an optimizer's
// state_dict (a dict with "state" and "param_groups"); `key` picks one, and
// without it the file must hold exactly one, because guessing between a model and its EMA
// would silently change every result. Names lose the "module." prefix that DataParallel adds
// when every name has it. A .safetensors file is one state dict.
struct PublishedWeights {
  std::string key;  // the chosen state dict's path
  TensorMap tensors;
};
PublishedWeights read_published_weights(const std::string& path, const std::string& key);

// Which published names may be absent from, or extra to, our model: name prefixes
// ("label_emb." or "" for all).
struct MatchRules {
  std::vector<std::string> allow_missing;
  std::vector<std::string> allow_unexpected;
};

// Copies each published tensor into our parameter of the same name (converting its dtype).
// Checks everything first and throws one UserError listing every missing name, every unexpected
// one and every shape mismatch with both shapes (names are ours and the file's, which are the
// same by Note [published networks]); nothing is copied then. Returns the names left at their
// initial values (allowed missing).
std::vector<std::string> copy_published(const PublishedWeights& weights, const NamedTensors& ours,
                                        const MatchRules& rules, const std::string& where);

}  // namespace ocm::checkpoints
