// Reading the .safetensors files that published model weights ship in.
#pragma once

#include <map>
#include <string>

#include "checkpoints/layout.h"

namespace ocm::checkpoints {

// Note [safetensors]
// A .safetensors file is 8 bytes holding N (little-endian), N bytes of UTF-8 JSON, then the
// tensors' bytes. The JSON maps each tensor's name to {"dtype", "shape", "data_offsets": [begin,
// end]}, offsets counted from the first byte after the header, plus an optional "__metadata__"
// object of strings. Tensors are row-major and little-endian. Everything is checked against the
// file's size before anything is allocated: the header is at most 100 MB and valid JSON, every
// dtype is known, every shape non-negative, each tensor's byte count is its element count times
// its dtype's size, and the tensors tile the data exactly (no gap, no overlap, nothing after),
// which is what the format's own reader demands too. Tensors keep their dtype (F16 and BF16
// included); converting is the caller's choice.
struct SafetensorsFile {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

// Throws UserError naming the file, the tensor and the field when the file breaks the format.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace ocm::checkpoints
