#include "checkpoints/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/hdf5.h"
#include "common/sha256.h"

namespace ocm::checkpoints {
namespace {

using nlohmann::json;

constexpr int kMaxRank = 8;

std::string step_name(int64_t step, const char* suffix) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-%010lld%s", static_cast<long long>(step), suffix);
  return name;
}

struct TypeMap {
  torch::ScalarType scalar;
  hid_t file_type;
  hid_t memory_type;
};

const std::vector<TypeMap>& type_map() {
  static const std::vector<TypeMap> types = {{torch::kFloat32, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
                                             {torch::kFloat64, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE},
                                             {torch::kInt64, H5T_STD_I64LE, H5T_NATIVE_INT64},
                                             {torch::kInt32, H5T_STD_I32LE, H5T_NATIVE_INT32},
                                             {torch::kUInt8, H5T_STD_U8LE, H5T_NATIVE_UINT8}};
  return types;
}

// Note [checkpoint image]
// The checkpoint file is built in memory by HDF5's core driver, so its bytes exist before they
// reach the disk: save_checkpoint hashes them on one thread while it writes them with plain
// write(2) on another, and never reads the file back; one large sequential write is also what
// a disk does fastest. The driver builds the file in the process's ImageArena (through HDF5's
// file image callbacks), which keeps its memory from one checkpoint to the next: copying the
// image out of HDF5 and faulting in fresh pages for it each time cost 1.9 s and about 1 s of a
// 1.9 GB checkpoint's 6.6 s (bench/checkpoint_bench.h). The arena holds the size of the last
// checkpoint for the life of the process, and one checkpoint is built at a time.
class ImageArena {
 public:
  ImageArena() = default;
  ImageArena(const ImageArena&) = delete;
  ImageArena& operator=(const ImageArena&) = delete;
  ~ImageArena() { std::free(data_); }

  // At least `size` bytes, the old ones kept; nullptr when memory runs out.
  void* resize(size_t size) {
    if (size > capacity_) {
      void* grown = std::realloc(data_, size);
      if (grown == nullptr)
        return nullptr;
      data_ = grown;
      capacity_ = size;
    }
    return data_;
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(data_); }
  std::mutex& mutex() { return mutex_; }

  // HDF5's core driver allocates, grows and frees the file's memory through these; freeing
  // keeps it, for the next checkpoint.
  static H5FD_file_image_callbacks_t callbacks(ImageArena& arena) {
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

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
  std::mutex mutex_;
};

ImageArena& image_arena() {
  static ImageArena arena;
  return arena;
}

// The bytes of a checkpoint file: the first `size` bytes of the arena.
struct FileImage {
  const uint8_t* bytes = nullptr;
  size_t size = 0;
};

void write_tensor(hid_t file, hid_t links, const std::string& name, const torch::Tensor& tensor,
                  const std::string& path) {
  const torch::Tensor cpu = tensor.detach().cpu().contiguous();
  const auto type = std::find_if(type_map().begin(), type_map().end(),
                                 [&](const TypeMap& t) { return t.scalar == cpu.scalar_type(); });
  if (type == type_map().end())
    throw std::logic_error("checkpoint tensor " + name + " has an unsupported dtype");
  std::vector<hsize_t> dims(cpu.sizes().begin(), cpu.sizes().end());
  Hid space(dims.empty() ? H5Screate(H5S_SCALAR)
                         : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Hid dataset(H5Dcreate2(file, name.c_str(), type->file_type, space.get(), links, H5P_DEFAULT,
                         H5P_DEFAULT));
  if (!dataset.valid() || (cpu.numel() > 0 && H5Dwrite(dataset.get(), type->memory_type, H5S_ALL,
                                                       H5S_ALL, H5P_DEFAULT, cpu.data_ptr()) < 0))
    throw UserError(path, "could not be built in memory (tensor " + name + ")", "free host memory");
}

// The file of `c`, built in `arena` (Note [checkpoint image]).
FileImage hdf5_image(const Checkpoint& c, const std::string& path, ImageArena& arena) {
  silence_hdf5_errors();
  Hid access(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fapl_core(access.get(), size_t{64} << 20, /*backing_store=*/0);
  const H5FD_file_image_callbacks_t callbacks = ImageArena::callbacks(arena);
  H5Pset_file_image_callbacks(access.get(), const_cast<H5FD_file_image_callbacks_t*>(&callbacks));
  Hid file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()));
  if (!file.valid())
    throw UserError(path, "cannot be built in memory", "free host memory");
  write_attribute(file.get(), "format_version", kFormatVersion);
  write_attribute(file.get(), "step", c.step);
  write_attribute(file.get(), "phase", c.phase);
  write_attribute(file.get(), "config_hash", c.config_hash);
  write_attribute(file.get(), "config", c.config_yaml);
  write_attribute(file.get(), "world_size", c.world_size);
  Hid links(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(links.get(), 1);
  for (const auto& [name, tensor] : c.tensors)
    write_tensor(file.get(), links.get(), name, tensor, path);
  // The file ends at its end of allocation; the driver's memory runs on to a whole increment.
  const ssize_t size =
      H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0 ? -1 : H5Fget_file_image(file.get(), nullptr, 0);
  links.reset();
  file.reset();
  if (size <= 0)
    throw UserError(path, "could not be built in memory", "free host memory");
  return FileImage{arena.data(), static_cast<size_t>(size)};
}

// Writes and fsyncs `image` as `path` while another thread hashes it; returns the SHA-256.
std::string write_and_hash(const FileImage& image, const std::string& path,
                           const std::string& reported) {
  auto digest = std::async(std::launch::async, [&image] {
    Sha256 hash;
    hash.update(image.bytes, image.size);
    return hash.hex_digest();
  });
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw UserError(reported, std::string("cannot be created (") + std::strerror(errno) + ")",
                    "a writable run directory");
  constexpr size_t kPiece = size_t{64} << 20;
  for (size_t at = 0; at < image.size;) {
    const ssize_t n = ::write(fd, image.bytes + at, std::min(kPiece, image.size - at));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      const std::string cause = n < 0 ? std::strerror(errno) : "nothing written";
      ::close(fd);
      throw UserError(reported, "could not be written (" + cause + ")",
                      "free disk space and a writable run directory");
    }
    at += static_cast<size_t>(n);
  }
  // Synced here, while the hash may still be running, so the two overlap; files::write_atomically
  // then finds nothing left to sync.
  const bool synced = ::fsync(fd) == 0;
  const int sync_error = errno;
  if (::close(fd) != 0 || !synced)
    throw UserError(
        reported,
        std::string("could not be synced (") + std::strerror(synced ? errno : sync_error) + ")",
        "free disk space");
  return digest.get();
}

// Collects the names of every dataset in the file.
herr_t collect_dataset(hid_t, const char* name, const H5O_info_t* info, void* out) {
  if (info->type == H5O_TYPE_DATASET)
    static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

struct Manifest {
  std::string file;
  int64_t bytes = 0;
  std::string sha256;
  int64_t step = 0;
};

Manifest read_manifest(const std::string& manifest_path) {
  std::ifstream in(manifest_path);
  if (!in)
    throw UserError(manifest_path, "is missing", "the manifest written with every checkpoint");
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json root = json::parse(text.str());
    Manifest m{root.at("file").get<std::string>(), root.at("bytes").get<int64_t>(),
               root.at("sha256").get<std::string>(), root.at("step").get<int64_t>()};
    if (root.at("format_version").get<int64_t>() != kFormatVersion) {
      throw UserError(manifest_path, "has format version " + root.at("format_version").dump(),
                      "version " + std::to_string(kFormatVersion));
    }
    return m;
  } catch (const json::exception& e) {
    throw UserError(manifest_path, std::string("is not a checkpoint manifest (") + e.what() + ")",
                    "the JSON written with every checkpoint");
  }
}

std::string manifest_path_of(const std::string& checkpoint_path) {
  const std::string name = files::filename(checkpoint_path);
  const size_t dot = name.rfind(".h5");
  return files::join(files::parent(checkpoint_path),
                     (dot == std::string::npos ? name : name.substr(0, dot)) + ".json");
}

// Steps of the checkpoints in `dir` that have a manifest, newest first.
std::vector<int64_t> manifest_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  for (const auto& entry : files::list_directory(dir)) {
    long long step = 0;
    char tail[16] = {0};
    if (std::sscanf(entry.name.c_str(), "ckpt-%lld.%15s", &step, tail) == 2 &&
        std::string(tail) == "json") {
      steps.push_back(step);
    }
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

void prune(const std::string& dir, const Retention& retention) {
  const std::vector<int64_t> steps = manifest_steps(dir);
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool recent = static_cast<int64_t>(i) < std::max<int64_t>(1, retention.keep_last);
    const bool milestone = retention.keep_every > 0 && steps[i] % retention.keep_every == 0;
    const bool kept = std::find(retention.keep_steps.begin(), retention.keep_steps.end(),
                                steps[i]) != retention.keep_steps.end();
    if (recent || milestone || kept)
      continue;
    ::unlink(files::join(dir, step_name(steps[i], ".json")).c_str());  // manifest first
    ::unlink(files::join(dir, step_name(steps[i], ".h5")).c_str());
  }
}

}  // namespace

std::string checkpoint_path(const std::string& dir, int64_t step) {
  return files::join(dir, step_name(step, ".h5"));
}

std::string save_checkpoint(const std::string& dir, const Checkpoint& checkpoint,
                            const Retention& retention) {
  const std::string error = files::create_directories(dir);
  if (!error.empty())
    throw UserError(dir, "cannot be created (" + error + ")", "a writable run directory");
  const std::string name = step_name(checkpoint.step, ".h5");
  const std::string path = files::join(dir, name);
  ImageArena& arena = image_arena();
  const std::lock_guard<std::mutex> one_at_a_time(arena.mutex());
  const FileImage image = hdf5_image(checkpoint, path, arena);
  std::string digest;
  files::write_atomically(
      path, [&](const std::string& temporary) { digest = write_and_hash(image, temporary, path); });
  const auto bytes = static_cast<int64_t>(image.size);
  const json manifest = {{"format_version", kFormatVersion},
                         {"file", name},
                         {"bytes", bytes},
                         {"sha256", digest},
                         {"step", checkpoint.step}};
  files::write_text_atomically(files::join(dir, step_name(checkpoint.step, ".json")),
                               manifest.dump(2) + "\n");
  files::write_text_atomically(files::join(dir, "latest"), name + "\n");
  prune(dir, retention);
  return path;
}

namespace {

// The attributes every checkpoint file carries; UserError when one is missing.
Checkpoint read_checkpoint_attributes(hid_t file, const std::string& path) {
  Checkpoint c;
  int64_t version = 0;
  if (!read_attribute(file, "format_version", &version) || version != kFormatVersion ||
      !read_attribute(file, "step", &c.step) || !read_attribute(file, "phase", &c.phase) ||
      !read_attribute(file, "config_hash", &c.config_hash) ||
      !read_attribute(file, "config", &c.config_yaml) ||
      !read_attribute(file, "world_size", &c.world_size)) {
    throw UserError(path, "lacks the checkpoint attributes or has another format version",
                    "format_version " + std::to_string(kFormatVersion) +
                        ", step, phase, config_hash, config, world_size");
  }
  return c;
}

// The tensor stored as dataset `name`, its size bounded by the file's before it is allocated.
torch::Tensor read_dataset_tensor(hid_t file, const std::string& name, const std::string& path,
                                  int64_t file_bytes) {
  const std::string where = path + ":" + name;
  Hid dataset(H5Dopen2(file, name.c_str(), H5P_DEFAULT));
  Hid space(H5Dget_space(dataset.get()));
  Hid type(H5Dget_type(dataset.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > kMaxRank)
    throw UserError(where, "has rank " + std::to_string(rank), "at most 8");
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const auto match = std::find_if(type_map().begin(), type_map().end(), [&](const TypeMap& t) {
    return H5Tequal(type.get(), t.file_type) > 0;
  });
  if (match == type_map().end())
    throw UserError(where, "has an unsupported type", "float, int or uint8 data");
  // At most 64 times the file in 8-byte elements (compression aside), checked before each
  // product so that no declared size overflows.
  const uint64_t limit = static_cast<uint64_t>(file_bytes) * 8 + 128;
  uint64_t count = 1;
  std::vector<int64_t> shape;
  for (const hsize_t d : dims) {
    if (d > 0 && count > limit / d)
      throw UserError(where, "declares more data than the file holds", "a consistent checkpoint");
    count *= d;
    shape.push_back(static_cast<int64_t>(d));
  }
  torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(match->scalar));
  if (count > 0 && H5Dread(dataset.get(), match->memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                           tensor.data_ptr()) < 0) {
    throw UserError(where, "cannot be read", "an intact checkpoint");
  }
  return tensor;
}

}  // namespace

Checkpoint load_checkpoint(const std::string& path) {
  silence_hdf5_errors();
  const Manifest manifest = read_manifest(manifest_path_of(path));
  const int64_t bytes = files::file_size(path);
  if (bytes != manifest.bytes) {
    throw UserError(path, "is " + std::to_string(bytes) + " bytes",
                    std::to_string(manifest.bytes) + " as its manifest records",
                    "The checkpoint is incomplete or damaged.");
  }
  const std::string digest = sha256_file(path);
  if (digest != manifest.sha256) {
    throw UserError(path, "has sha256 " + digest, manifest.sha256 + " as its manifest records",
                    "The checkpoint is damaged.");
  }
  return read_checkpoint_file(path);
}

Checkpoint read_checkpoint_file(const std::string& path) {
  silence_hdf5_errors();
  const int64_t bytes = files::file_size(path);
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid())
    throw UserError(path, "cannot be opened as HDF5", "a checkpoint file");
  Checkpoint c = read_checkpoint_attributes(file.get(), path);
  std::vector<std::string> names;
  H5Ovisit(file.get(), H5_INDEX_NAME, H5_ITER_NATIVE, collect_dataset, &names);
  for (const std::string& name : names)
    c.tensors["/" == name.substr(0, 1) ? name.substr(1) : name] =
        read_dataset_tensor(file.get(), name, path, bytes);
  return c;
}

std::optional<Found> load_newest_valid(const std::string& dir) {
  for (const int64_t step : manifest_steps(dir)) {
    const std::string path = files::join(dir, step_name(step, ".h5"));
    try {
      return Found{path, load_checkpoint(path)};
    } catch (const UserError& e) {
      spdlog::warn("skipping checkpoint {}: {} Trying the previous one.", path, e.what());
    }
  }
  return std::nullopt;
}

}  // namespace ocm::checkpoints
