// The source folder of the IDX harness (idx_fuzz.cpp), also replayed by the unit tests: the
// input's first byte picks which of MNIST's four IDX files the rest of it replaces; the other
// three are small valid files (gzopen reads uncompressed files as they are), so that the pairing
// of images and labels and the conversion after it are reached too.
#pragma once

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <string>

#include "common/files.h"

namespace ocm::fuzz {

// A valid IDX file of unsigned bytes: magic, big-endian dimensions, `data` bytes of value 1.
inline std::string idx_file(int rank, std::initializer_list<uint32_t> dims, size_t data) {
  std::string out = {0, 0, 8, static_cast<char>(rank)};
  for (const uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      out += static_cast<char>((d >> shift) & 0xff);
  return out + std::string(data, '\1');
}

// Fills `dir` (emptied first) with the four files for `input`; false for an empty input.
inline bool write_idx_source(const std::string& dir, const std::string& input) {
  if (input.empty())
    return false;
  const char* const names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  const std::string valid[] = {idx_file(3, {2, 4, 4}, 32), idx_file(1, {2}, 2),
                               idx_file(3, {1, 4, 4}, 16), idx_file(1, {1}, 1)};
  files::remove_tree(dir);
  files::create_directories(dir);
  const int chosen = static_cast<unsigned char>(input[0]) % 4;
  for (int i = 0; i < 4; ++i) {
    std::ofstream(files::join(dir, names[i]), std::ios::binary | std::ios::trunc)
        << (i == chosen ? input.substr(1) : valid[i]);
  }
  return true;
}

}  // namespace ocm::fuzz
