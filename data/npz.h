// .npz archives (numpy.savez): a zip file whose members NAME.npy each hold one array. What the
// guided-diffusion evaluator reads samples from (arr_0: uint8 [N, H, W, C]) and what EDM's fid.py
// and pytorch-fid keep reference statistics in (mu, sigma: float64). Zip through minizip.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/npy.h"

namespace ocm::data {

struct NpyArray {
  std::string descr;           // numpy's dtype string: "|u1", "<f8", "<i8", ...
  std::vector<int64_t> shape;  // C order
  std::string bytes;           // the values, little-endian, element_count(shape) * item size

  int64_t item_size() const;  // from descr: 1 for "|u1", 8 for "<f8"
};

// Writes `arrays` as members NAME.npy, stored uncompressed as numpy.savez does, through a
// temporary file and a rename (Note [atomic write]). Throws UserError when it cannot.
void write_npz(const std::string& path,
               const std::vector<std::pair<std::string, NpyArray>>& arrays);

// Every NAME.npy member of an .npz, stored or deflated (numpy.savez_compressed), each checked:
// a valid header, C order, little-endian or byte-order-free, and exactly the bytes its shape
// needs; the zip's CRC is checked too. Throws UserError naming the file and the member.
std::map<std::string, NpyArray> read_npz(const std::string& path);

}  // namespace ocm::data
