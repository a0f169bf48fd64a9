#include "checkpoints/image.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::checkpoints {
namespace {

constexpr const char* kWhere = "the checkpoint image in memory";

// Tensors of a page or more start on a page of the file, and so of the arena: copied to an
// address that is not, a 1.9 GB state took 1.5 times as long (bench/README.md).
constexpr hsize_t kAlignment = 4096;
constexpr hsize_t kAlignedFrom = 4096;

// The tensors' bytes are copied as they are into little-endian datasets.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint images assume little-endian");

// HDF5's core driver allocates, grows and frees the file's memory through these; freeing keeps
// it, for the next file.
H5FD_file_image_callbacks_t arena_callbacks(ImageArena& arena) {
  H5FD_file_image_callbacks_t c{};
  c.image_malloc = [](size_t size, H5FD_file_image_op_t, void* arena) {
    return static_cast<ImageArena*>(arena)->resize(size);
  };
  c.image_memcpy = [](void* to, const void* from, size_t size, H5FD_file_image_op_t, void*) {
    return std::memcpy(to, from, size);
  };
  c.image_realloc = [](void*, size_t size, H5FD_file_image_op_t, void* arena) {
    return static_cast<ImageArena*>(arena)->resize(size);
  };
  c.image_free = [](void*, H5FD_file_image_op_t, void*) -> herr_t { return 0; };
  c.udata_copy = [](void* arena) { return arena; };
  c.udata_free = [](void*) -> herr_t { return 0; };
  c.udata = &arena;
  return c;
}

// HDF5 refuses to create a file under the name of one still open, and images of different arenas
// (two writers, or save_checkpoint beside a writer) can be open at once: each gets its own name.
std::string unique_image_name() {
  static std::atomic<int64_t> count{0};
  return "ocm-checkpoint-image-" + std::to_string(count++);
}

const TypeMap& type_of(torch::ScalarType dtype, const std::string& name) {
  const auto type = std::find_if(type_map().begin(), type_map().end(),
                                 [&](const TypeMap& t) { return t.scalar == dtype; });
  if (type == type_map().end())
    throw std::logic_error("checkpoint tensor " + name + " has an unsupported dtype");
  return *type;
}

size_t bytes_of(const TensorSpec& spec) {
  int64_t count = 1;
  for (const int64_t d : spec.shape)
    count *= d;
  return static_cast<size_t>(count) * torch::elementSize(spec.dtype);
}

// Creates dataset `name` with its storage allocated now and never filled by HDF5; returns its
// offset in the file, or nothing for a dataset without elements.
std::optional<size_t> create_dataset(hid_t file, hid_t links, hid_t storage,
                                     const std::string& name, const TensorSpec& spec) {
  std::vector<hsize_t> dims(spec.shape.begin(), spec.shape.end());
  Hid space(dims.empty() ? H5Screate(H5S_SCALAR)
                         : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Hid dataset(H5Dcreate2(file, name.c_str(), type_of(spec.dtype, name).file_type, space.get(),
                         links, storage, H5P_DEFAULT));
  if (!dataset.valid())
    throw UserError(kWhere, "could not be laid out (tensor " + name + ")", "free host memory");
  const haddr_t offset = H5Dget_offset(dataset.get());
  if (offset == HADDR_UNDEF) {
    // HDF5 1.10 allocates nothing for a dataset without elements; for any other it is an error.
    if (bytes_of(spec) > 0)
      throw UserError(kWhere, "has no storage for tensor " + name, "free host memory");
    return std::nullopt;
  }
  return static_cast<size_t>(offset);
}

// Flushes `file` and returns its size: its end of allocation; -1 when the flush fails.
ssize_t flushed_size(hid_t file) {
  return H5Fflush(file, H5F_SCOPE_LOCAL) < 0 ? -1 : H5Fget_file_image(file, nullptr, 0);
}

}  // namespace

ImageArena::~ImageArena() {
  if (data_ != nullptr)
    ::munmap(data_, capacity_);
}

void* ImageArena::resize(size_t size) {
  if (size > capacity_) {
    // Pages of their own, so that the file's offsets keep their alignment in memory (Note
    // [checkpoint image]); mremap grows them without copying.
    void* grown = data_ == nullptr ? ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                   : ::mremap(data_, capacity_, size, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED)
      return nullptr;
    data_ = grown;
    capacity_ = size;
  }
  return data_;
}

const std::vector<TypeMap>& type_map() {
  static const std::vector<TypeMap> types = {{torch::kFloat32, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
                                             {torch::kFloat64, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE},
                                             {torch::kInt64, H5T_STD_I64LE, H5T_NATIVE_INT64},
                                             {torch::kInt32, H5T_STD_I32LE, H5T_NATIVE_INT32},
                                             {torch::kUInt8, H5T_STD_U8LE, H5T_NATIVE_UINT8}};
  return types;
}

Layout layout_of(const std::map<std::string, torch::Tensor>& tensors) {
  Layout layout;
  for (const auto& [name, tensor] : tensors)
    layout[name] = TensorSpec{tensor.sizes().vec(), tensor.scalar_type()};
  return layout;
}

CheckpointImage::CheckpointImage(ImageArena& arena, Layout layout)
    : arena_(arena), layout_(std::move(layout)) {
  silence_hdf5_errors();
  Hid access(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fapl_core(access.get(), size_t{64} << 20, /*backing_store=*/0);
  H5Pset_alignment(access.get(), kAlignedFrom, kAlignment);
  H5FD_file_image_callbacks_t callbacks = arena_callbacks(arena_);
  H5Pset_file_image_callbacks(access.get(), &callbacks);
  file_ = Hid(H5Fcreate(unique_image_name().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()));
  if (!file_.valid())
    throw UserError(kWhere, "cannot be created", "free host memory");
  Hid links(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(links.get(), 1);
  Hid storage(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_alloc_time(storage.get(), H5D_ALLOC_TIME_EARLY);
  H5Pset_fill_time(storage.get(), H5D_FILL_TIME_NEVER);
  for (const auto& [name, spec] : layout_) {
    if (const auto offset = create_dataset(file_.get(), links.get(), storage.get(), name, spec))
      slots_[name] = Slot{*offset, bytes_of(spec)};
  }
  // The flush extends the driver's memory over every allocated byte (zeroing what it adds), so
  // that fill() can write there and nothing of HDF5's overwrites it later.
  const ssize_t size = flushed_size(file_.get());
  if (size < 0)
    throw UserError(kWhere, "could not be laid out", "free host memory");
  for (const auto& [name, slot] : slots_) {
    if (slot.offset + slot.bytes > static_cast<size_t>(size) ||
        slot.offset + slot.bytes > arena_.capacity())
      throw std::logic_error("HDF5 placed checkpoint tensor " + name + " outside the image");
  }
}

void CheckpointImage::fill(const std::map<std::string, torch::Tensor>& tensors) {
  if (layout_of(tensors) != layout_)
    throw std::logic_error("checkpoint tensors do not match the image they are copied into");
  for (const auto& [name, slot] : slots_) {
    // Bytes, not typed elements: HDF5 packs datasets under kAlignedFrom at any byte offset.
    // contiguous() copies only a strided view; a staged or CPU state is contiguous already.
    const torch::Tensor source = tensors.at(name).detach().cpu().contiguous();
    std::memcpy(arena_.data() + slot.offset, source.data_ptr(), slot.bytes);
  }
}

FileImage CheckpointImage::seal(const Checkpoint& meta) {
  silence_hdf5_errors();
  write_attribute(file_.get(), "format_version", kFormatVersion);
  write_attribute(file_.get(), "step", meta.step);
  write_attribute(file_.get(), "phase", meta.phase);
  write_attribute(file_.get(), "config_hash", meta.config_hash);
  write_attribute(file_.get(), "config", meta.config_yaml);
  write_attribute(file_.get(), "world_size", meta.world_size);
  // The file ends at its end of allocation; the driver's memory runs on to a whole increment.
  const ssize_t size = flushed_size(file_.get());
  file_.reset();
  if (size <= 0)
    throw UserError(kWhere, "could not be completed", "free host memory");
  return FileImage{arena_.data(), static_cast<size_t>(size)};
}

}  // namespace ocm::checkpoints
