// How one fuzz input becomes the files a reader takes: a path, several files, or a name that
// picks the format. The corpus replay (tests/unit/fuzz_corpus_test.cpp) makes its files the
// same way.
#pragma once

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <string>

#include "common/files.h"

namespace ocm::fuzz {

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A valid IDX file of unsigned bytes: magic, big-endian dimensions, `data` bytes of value 1.
inline std::string idx_file(int rank, std::initializer_list<uint32_t> dims, size_t data) {
  std::string out = {0, 0, 8, static_cast<char>(rank)};
  for (const uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      out += static_cast<char>((d >> shift) & 0xff);
  return out + std::string(data, '\1');
}

// IDX: the input's first byte picks which of MNIST's four IDX files the rest replaces; the other
// three are small valid files (gzopen reads uncompressed files as they are), so that the pairing
// of images and labels and the conversion after it are reached too. Fills `dir` (emptied first);
// false for an empty input.
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
    write_file(files::join(dir, names[i]), i == chosen ? input.substr(1) : valid[i]);
  }
  return true;
}

// HDF5: `stem`.h5 holding all but the first byte, which picks the parser: a checkpoint when
// even, statistics when odd. An empty path for an empty input.
struct Hdf5Input {
  std::string path;
  bool checkpoint = false;
};
inline Hdf5Input write_hdf5_input(const std::string& stem, const std::string& input) {
  if (input.empty())
    return {};
  write_file(stem + ".h5", input.substr(1));
  return {stem + ".h5", static_cast<unsigned char>(input[0]) % 2 == 0};
}

// A checkpoint manifest: `dir`/ckpt-0000000001.json holds the input, beside a checkpoint file of
// 16 bytes. Returns the checkpoint's path, which load_checkpoint takes.
inline std::string write_checkpoint_manifest_input(const std::string& dir,
                                                   const std::string& input) {
  files::create_directories(dir);
  write_file(files::join(dir, "ckpt-0000000001.h5"), "sixteen bytes..\n");
  write_file(files::join(dir, "ckpt-0000000001.json"), input);
  return files::join(dir, "ckpt-0000000001.h5");
}

}  // namespace ocm::fuzz
