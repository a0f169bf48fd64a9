#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/hdf5.h"
#include "data/manifest.h"

namespace ocm::data {

// How elements are laid out in shards. The defaults are the measured choice
// (docs/dataset-format.md): one element per HDF5 chunk (elements under 1 KiB grouped up to
// 1 KiB), uncompressed.
struct ShardLayout {
  int64_t shard_bytes = int64_t{1} << 30;
  int64_t chunk_elements = 0;  // elements per HDF5 chunk; 0: max(1, 1 KiB / element bytes)
  int gzip_level = 0;          // 0: no compression
};

// Writes a dataset (Note [dataset format]) into a temporary sibling directory and renames it
// to its final name only in commit(), so an interrupted conversion never leaves anything that
// looks like a dataset. Elements arrive split by split, in order; each split's shards roll over
// at layout.shard_bytes.
//
// Several processes can write one dataset together, each its own part (Note [parallel
// conversion] in data/folder_converter.cpp): part 0 creates the temporary directory, the others
// write into it once part 0 has, each part's finish() describes its shards, and part 0 commits
// them all in part order.
struct WriterPart {
  int index = 0;
  int count = 1;
};

class DatasetWriter {
 public:
  // `header` gives kind, element_shape, dtype, has_labels, num_classes and source.
  // Throws UserError when out_dir exists or its parent is not writable.
  DatasetWriter(std::string out_dir, Manifest header, const ShardLayout& layout = {},
                WriterPart part = {});
  ~DatasetWriter();  // part 0 discards the temporary directory unless committed
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // n elements of element_bytes() each, and n labels when the dataset has labels.
  void append(const std::string& split, const void* elements, const int64_t* labels, int64_t n);

  // A one-part writer: closes, hashes, writes the manifest and renames into place.
  void commit();

  // A part of several: closes and hashes this part's shards and returns their description.
  std::string finish();
  // On part 0, after every part finished: joins the parts' descriptions (in part order) into
  // the manifest and renames the temporary directory into place.
  void commit_parts(const std::vector<std::string>& parts);

 private:
  struct OpenShard;
  void close_shard(const std::string& split);

  std::string out_dir_;
  std::string temp_dir_;
  Manifest manifest_;
  ShardLayout layout_;
  WriterPart part_;
  int64_t shard_capacity_;
  int next_shard_;
  bool committed_ = false;
  std::map<std::string, std::unique_ptr<OpenShard>> open_;
};

// A dataset opened for reading. Shards are opened on first use and kept open; reads from
// several threads are safe (HDF5 is built thread-safe; our shard table has its own lock).
class Dataset {
 public:
  explicit Dataset(std::string dir);  // reads and validates the manifest
  ~Dataset();

  const Manifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  int64_t size(const std::string& split) const { return manifest_.split(split, dir_).count; }

  // Copies the elements at `indices` of `split` into `out` (element_bytes() each, in order) and,
  // when `labels` is given and the dataset has labels, their labels.
  void read(const std::string& split, const std::vector<int64_t>& indices, void* out,
            int64_t* labels) const;

 private:
  struct Shard;
  const Shard& shard(const std::string& split, size_t position) const;

  std::string dir_;
  Manifest manifest_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::unique_ptr<Shard>> shards_;
};

// What `ocm data verify` checks: every shard exists, hashes to its manifest sha256, and holds
// datasets of the declared shape, type and length; labels lie in [0, num_classes). Throws
// UserError naming the first bad shard. Returns the number of elements checked.
int64_t verify_dataset(const std::string& dir);

}  // namespace ocm::data
