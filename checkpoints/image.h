// A checkpoint file built in memory before it is written (Note [checkpoint image]).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "checkpoints/checkpoint.h"
#include "common/hdf5.h"

namespace ocm::checkpoints {

// Note [checkpoint image]
// A checkpoint file is built in memory by HDF5's core driver, so its bytes exist before they
// reach the disk: they are hashed on one thread while another writes them with plain write(2),
// and the file is never read back; one large sequential write is also what a disk does fastest.
// The driver keeps the file in an ImageArena (through HDF5's file image callbacks). A
// BackgroundWriter keeps its arena from one checkpoint to the next: copying the image out of HDF5
// and faulting in fresh pages for it each time cost 1.9 s and about 1 s of a 1.9 GB checkpoint's
// 6.6 s (bench/README.md). save_checkpoint, for the few checkpoints written outside training,
// builds in an arena of its own and frees it.
//
// The tensors' bytes do not go through HDF5. The file is laid out first: every dataset gets its
// storage at creation (H5D_ALLOC_TIME_EARLY) and no fill value (H5D_FILL_TIME_NEVER), and a flush
// makes the driver's memory cover it all. The tensors are then copied straight to their datasets'
// offsets in the arena, and sealing writes the attributes and the metadata around them. So the
// state is copied once, from the tensors into the file, instead of once into staging buffers and
// again by H5Dwrite (0.8 s of a 1.9 GB background write), and a laid-out image can wait for the
// next checkpoint of the same tensors (Note [asynchronous checkpoints]).

// Memory that HDF5's core driver builds files in, kept from one file to the next. One image at
// a time uses it.
class ImageArena {
 public:
  ImageArena() = default;
  ImageArena(const ImageArena&) = delete;
  ImageArena& operator=(const ImageArena&) = delete;
  ~ImageArena();

  // At least `size` bytes, the old ones kept; nullptr when memory runs out.
  void* resize(size_t size);
  uint8_t* data() { return static_cast<uint8_t*>(data_); }
  size_t capacity() const { return capacity_; }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

// How a checkpoint tensor is stored: the HDF5 types of its dtype.
struct TypeMap {
  torch::ScalarType scalar;
  hid_t file_type;
  hid_t memory_type;
};
const std::vector<TypeMap>& type_map();

// The name, shape and dtype of every tensor of a checkpoint: what an image is laid out for.
struct TensorSpec {
  std::vector<int64_t> shape;
  torch::ScalarType dtype;
  bool operator==(const TensorSpec& other) const {
    return shape == other.shape && dtype == other.dtype;
  }
};
using Layout = std::map<std::string, TensorSpec>;
Layout layout_of(const std::map<std::string, torch::Tensor>& tensors);

// The bytes of a finished checkpoint file.
struct FileImage {
  const uint8_t* bytes = nullptr;
  size_t size = 0;
};

// One checkpoint file in an arena: laid out, filled with the tensors, then sealed.
class CheckpointImage {
 public:
  // Lays out a file with a dataset for every tensor of `layout`, whose bytes are still to come.
  CheckpointImage(ImageArena& arena, Layout layout);
  CheckpointImage(const CheckpointImage&) = delete;
  CheckpointImage& operator=(const CheckpointImage&) = delete;

  const Layout& layout() const { return layout_; }
  // Copies tensors of this layout into their datasets (from a GPU too, synchronously).
  void fill(const std::map<std::string, torch::Tensor>& tensors);
  // Writes the attributes of `meta` (its tensors are not looked at) and closes the file. The
  // bytes stay valid until the arena builds another file.
  FileImage seal(const Checkpoint& meta);

 private:
  struct Slot {
    size_t offset = 0;
    size_t bytes = 0;
  };
  ImageArena& arena_;
  Layout layout_;
  std::map<std::string, Slot> slots_;
  Hid file_;
};

// Seals `image` with the attributes of `meta` and writes it into `dir` (created if needed) as the
// checkpoint of `meta.step`, with its manifest, `latest` and retention (Note [atomic
// checkpoints]); returns its path.
std::string write_checkpoint(const std::string& dir, CheckpointImage& image, const Checkpoint& meta,
                             const Retention& retention);

}  // namespace ocm::checkpoints
