// Reading and writing the files that PyTorch's torch.save writes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "checkpoints/layout.h"

namespace ocm::checkpoints {

// Note [torch.save files]
// Since PyTorch 1.6, torch.save writes a zip archive: <name>/data.pkl holds a Python pickle of
// the object, whose tensors are persistent references to storages stored raw as
// <name>/data/<key>. LibTorch reads the archive (caffe2's PyTorchStreamReader), but its
// unpickler cannot read a state_dict: it turns every collections.OrderedDict into None (it only
// expects one in a tensor's backward hooks) and applies BUILD only to its own globals, so
// torch::pickle_load of `torch.save(model.state_dict())` returns None (measured with Debian's
// LibTorch 1.13). We therefore read the pickle ourselves, with a small stack machine that knows
// only data: None, booleans, integers, floats, strings, bytes, lists, tuples, dicts (ordered
// ones included) and tensors (rebuilt from their storage, offset, size and stride). Any other
// Python object (a NumPy scalar, an argparse namespace, ...) is kept as an opaque value that
// names its class, so a checkpoint that also holds such things still loads; nothing is ever
// executed. Legacy (pre-1.6) files are not zip archives and are refused with the one-line
// re-save command.
struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTensor, kList, kTuple, kDict, kObject };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string text;  // kString (and bytes); kObject: the class or function, "module.name"
  torch::Tensor tensor;
  std::vector<PickleRef> items;                          // kList, kTuple
  std::vector<std::pair<PickleRef, PickleRef>> entries;  // kDict, in insertion order
};

// "dict", "tensor", "numpy.core.multiarray.scalar", ...: what a value is, for messages.
std::string describe(const PickleValue& value);

// Reads a torch.save file. Throws UserError naming the file for anything else: a legacy
// (pre-1.6) torch.save file, a damaged archive or pickle, an unsupported storage type.
PickleRef read_torch_file(const std::string& path);

// Writes `tensors` as a dict of name to tensor in torch.save's zip format (torch.load reads it
// back as a dict, which load_state_dict takes).
void write_torch_file(const std::string& path, const std::vector<std::string>& names,
                      const std::vector<torch::Tensor>& tensors);

}  // namespace ocm::checkpoints
