#include "checkpoints/published.h"

#include <set>

#include <torch/torch.h>

#include "checkpoints/safetensors.h"
#include "checkpoints/torch_file.h"
#include "common/error.h"

namespace ocm::checkpoints {
namespace {

using Kind = PickleValue::Kind;

bool is_state_dict(const PickleValue& value) {
  if (value.kind != Kind::kDict || value.entries.empty())
    return false;
  for (const auto& [key, item] : value.entries) {
    if (key->kind != Kind::kString || item->kind != Kind::kTensor)
      return false;
  }
  return true;
}

// torch.optim's state_dict(): {'state': {index: {'exp_avg': tensor, ...}}, 'param_groups': [...]}.
// Its per-parameter dicts of tensors are not model weights.
bool is_optimizer_state(const PickleValue& value) {
  int keys = 0;
  for (const auto& [key, item] : value.entries)
    keys += key->kind == Kind::kString && (key->text == "state" || key->text == "param_groups");
  return value.kind == Kind::kDict && keys == 2;
}

// Every state dict within `depth` levels of `value`, by path.
void find_state_dicts(const PickleRef& value, const std::string& path, int depth,
                      std::vector<std::pair<std::string, PickleRef>>& found) {
  if (is_state_dict(*value)) {
    found.emplace_back(path, value);
    return;
  }
  if (depth == 0 || is_optimizer_state(*value))
    return;
  auto child_path = [&](const std::string& name) {
    return path.empty() ? name : path + "/" + name;
  };
  if (value->kind == Kind::kDict) {
    for (const auto& [key, item] : value->entries) {
      const std::string name = key->kind == Kind::kString ? key->text
                               : key->kind == Kind::kInt  ? std::to_string(key->integer)
                                                          : describe(*key);
      find_state_dicts(item, child_path(name), depth - 1, found);
    }
  } else if (value->kind == Kind::kList || value->kind == Kind::kTuple) {
    for (size_t i = 0; i < value->items.size(); ++i)
      find_state_dicts(value->items[i], child_path(std::to_string(i)), depth - 1, found);
  }
}

std::string candidates_text(const std::vector<std::pair<std::string, PickleRef>>& found) {
  std::string text;
  for (const auto& [path, dict] : found) {
    text += (text.empty() ? "" : ", ") + (path.empty() ? std::string("\"\"") : path) + " (" +
            std::to_string(dict->entries.size()) + " tensors)";
  }
  return text;
}

PublishedWeights pick_state_dict(const PickleRef& root, const std::string& key,
                                 const std::string& path) {
  std::vector<std::pair<std::string, PickleRef>> found;
  find_state_dicts(root, "", 3, found);
  if (found.empty()) {
    throw UserError(path,
                    "holds no state dict (a " + describe(*root) +
                        " without a dict of names to tensors in its first three levels)",
                    "a model's state_dict, alone or inside a dict or list");
  }
  const PickleRef* chosen = nullptr;
  std::string chosen_key;
  for (const auto& [candidate, dict] : found) {
    if (candidate == key || (key.empty() && found.size() == 1)) {
      chosen = &dict;
      chosen_key = candidate;
    }
  }
  if (chosen == nullptr) {
    throw UserError(path,
                    key.empty() ? "holds " + std::to_string(found.size()) + " state dicts"
                                : "has no state dict `" + key + "`",
                    "one of: " + candidates_text(found),
                    "Pick one with --key (usually the EMA weights, which are what was evaluated).");
  }
  PublishedWeights weights{chosen_key, {}};
  for (const auto& [name, tensor] : (*chosen)->entries)
    weights.tensors[name->text] = tensor->tensor;
  return weights;
}

bool has_suffix(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void strip_data_parallel_prefix(TensorMap& tensors) {
  const std::string prefix = "module.";
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind(prefix, 0) != 0)
      return;
  }
  TensorMap stripped;
  for (auto& [name, tensor] : tensors)
    stripped[name.substr(prefix.size())] = tensor;
  tensors = std::move(stripped);
}

bool allowed(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (name.rfind(prefix, 0) == 0)
      return true;
  }
  return false;
}

}  // namespace

PublishedWeights read_published_weights(const std::string& path, const std::string& key) {
  PublishedWeights weights;
  if (has_suffix(path, ".safetensors")) {
    if (!key.empty())
      throw UserError("--key " + key, "was given for a .safetensors file",
                      "no --key: it holds one state dict");
    weights.tensors = read_safetensors(path).tensors;
  } else {
    weights = pick_state_dict(read_torch_file(path), key, path);
  }
  strip_data_parallel_prefix(weights.tensors);
  return weights;
}

std::vector<std::string> copy_published(const PublishedWeights& weights, const NamedTensors& ours,
                                        const MatchRules& rules, const std::string& where) {
  std::vector<std::string> problems, left_initial;
  std::set<std::string> used;
  for (size_t i = 0; i < ours.names.size(); ++i) {
    const std::string& name = ours.names[i];
    const auto it = weights.tensors.find(name);
    if (it == weights.tensors.end()) {
      if (allowed(name, rules.allow_missing))
        left_initial.push_back(name);
      else
        problems.push_back("missing " + name + " " + c10::str(ours.tensors[i].sizes()));
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != ours.tensors[i].sizes()) {
      problems.push_back("shape of " + name + ": the file has " + c10::str(it->second.sizes()) +
                         ", the config's model " + c10::str(ours.tensors[i].sizes()));
    }
  }
  for (const auto& [name, tensor] : weights.tensors) {
    if (!used.count(name) && !allowed(name, rules.allow_unexpected))
      problems.push_back("unexpected " + name + " " + c10::str(tensor.sizes()));
  }
  if (!problems.empty()) {
    std::string list;
    for (const std::string& problem : problems)
      list += "\n  " + problem;
    throw UserError(where + (weights.key.empty() ? "" : " (" + weights.key + ")"),
                    "does not fit the config's model: " + std::to_string(problems.size()) +
                        " mismatch(es):" + list,
                    "the parameters of the network the config describes, by name and shape",
                    "Check model.* against the checkpoint's published settings (configs/ names "
                    "them); --allow-missing / --allow-unexpected PREFIX accept known gaps.");
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < ours.names.size(); ++i) {
    const auto it = weights.tensors.find(ours.names[i]);
    if (it != weights.tensors.end())
      ours.tensors[i].copy_(it->second);
  }
  return left_initial;
}

}  // namespace ocm::checkpoints
