#include "checkpoints/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "checkpoints/image.h"
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

std::string write_checkpoint(const std::string& dir, CheckpointImage& image, const Checkpoint& meta,
                             const Retention& retention) {
  const std::string error = files::create_directories(dir);
  if (!error.empty())
    throw UserError(dir, "cannot be created (" + error + ")", "a writable run directory");
  const std::string name = step_name(meta.step, ".h5");
  const std::string path = files::join(dir, name);
  const FileImage file = image.seal(meta);
  std::string digest;
  files::write_atomically(
      path, [&](const std::string& temporary) { digest = write_and_hash(file, temporary, path); });
  const auto bytes = static_cast<int64_t>(file.size);
  const json manifest = {{"format_version", kFormatVersion},
                         {"file", name},
                         {"bytes", bytes},
                         {"sha256", digest},
                         {"step", meta.step}};
  files::write_text_atomically(files::join(dir, step_name(meta.step, ".json")),
                               manifest.dump(2) + "\n");
  files::write_text_atomically(files::join(dir, "latest"), name + "\n");
  prune(dir, retention);
  return path;
}

std::string save_checkpoint(const std::string& dir, const Checkpoint& checkpoint,
                            const Retention& retention) {
  ImageArena arena;
  CheckpointImage image(arena, layout_of(checkpoint.tensors));
  image.fill(checkpoint.tensors);
  return write_checkpoint(dir, image, checkpoint, retention);
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
