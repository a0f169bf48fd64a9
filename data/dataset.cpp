#include "data/dataset.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "common/files.h"
#include "common/sha256.h"

namespace ocm::data {
namespace {

const char* element_dataset(const Manifest& m) {
  return m.kind == "images" ? "images" : "arrays";
}
hid_t file_type(const Manifest& m) {
  return m.dtype == "uint8" ? H5T_STD_U8LE : H5T_IEEE_F32LE;
}
hid_t memory_type(const Manifest& m) {
  return m.dtype == "uint8" ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
}

std::vector<hsize_t> dims_of(int64_t n, const std::vector<int64_t>& shape) {
  std::vector<hsize_t> dims = {static_cast<hsize_t>(n)};
  for (const int64_t d : shape)
    dims.push_back(static_cast<hsize_t>(d));
  return dims;
}

std::string shard_name(int index) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05d.h5", index);
  return name;
}

// Writes `n` rows starting at row `offset` of a dataset whose first dimension is extended first.
void append_rows(hid_t dataset, hid_t type, const std::vector<hsize_t>& row_shape_with_n,
                 hsize_t offset, const void* data, const std::string& where) {
  std::vector<hsize_t> total = row_shape_with_n;
  total[0] += offset;
  std::vector<hsize_t> start(total.size(), 0);
  start[0] = offset;
  if (H5Dset_extent(dataset, total.data()) < 0)
    throw UserError(where, "could not be extended", "disk space");
  Hid file_space(H5Dget_space(dataset));
  Hid memory_space(H5Screate_simple(static_cast<int>(row_shape_with_n.size()),
                                    row_shape_with_n.data(), nullptr));
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                      row_shape_with_n.data(), nullptr);
  if (H5Dwrite(dataset, type, memory_space.get(), file_space.get(), H5P_DEFAULT, data) < 0) {
    throw UserError(where, "could not be written", "a writable output directory with free space");
  }
}

}  // namespace

struct DatasetWriter::OpenShard {
  std::string file;
  int64_t begin = 0;
  int64_t count = 0;
  Hid file_id, elements, labels;
};

DatasetWriter::DatasetWriter(std::string out_dir, Manifest header, const ShardLayout& layout,
                             WriterPart part)
    : out_dir_(std::move(out_dir)),
      temp_dir_(out_dir_ + ".partial"),
      manifest_(std::move(header)),
      layout_(layout),
      part_(part),
      next_shard_(part.index * 1000000) {
  silence_hdf5_errors();
  if (layout_.shard_bytes < 1 || layout_.chunk_elements < 0 || layout_.gzip_level < 0 ||
      layout_.gzip_level > 9) {
    throw UserError("shard layout",
                    "has a non-positive shard size, a negative chunk or a gzip level outside 0-9",
                    "a positive shard size");
  }
  shard_capacity_ = std::max<int64_t>(1, layout_.shard_bytes / manifest_.element_bytes());
  if (layout_.chunk_elements == 0) {
    layout_.chunk_elements = std::max<int64_t>(1, 1024 / manifest_.element_bytes());
  }
  manifest_.splits.clear();
  if (part_.index != 0)
    return;
  if (files::exists(out_dir_)) {
    throw UserError(out_dir_, "already exists", "a new output directory",
                    "Remove it or choose another --out; nothing was written.");
  }
  // A .partial directory left by an interrupted conversion is never a dataset: start afresh.
  files::remove_tree(temp_dir_);
  const std::string error = files::create_directories(temp_dir_);
  if (!error.empty()) {
    throw UserError(temp_dir_, "cannot be created (" + error + ")", "a writable parent directory");
  }
}

DatasetWriter::~DatasetWriter() {
  open_.clear();
  if (!committed_ && part_.index == 0) {
    files::remove_tree(temp_dir_);
  }
}

void DatasetWriter::append(const std::string& split, const void* elements, const int64_t* labels,
                           int64_t n) {
  const auto* bytes = static_cast<const unsigned char*>(elements);
  const int64_t element_bytes = manifest_.element_bytes();
  while (n > 0) {
    auto& shard = open_[split];
    if (shard && shard->count == shard_capacity_)
      close_shard(split);
    if (!shard) {
      shard = std::make_unique<OpenShard>();
      shard->file = shard_name(next_shard_++);
      shard->begin = manifest_.splits[split].count;
      const std::string path = files::join(temp_dir_, shard->file);
      shard->file_id = Hid(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT));
      if (!shard->file_id.valid())
        throw UserError(path, "cannot be created", "a writable output directory");
      const std::vector<hsize_t> empty = dims_of(0, manifest_.element_shape);
      std::vector<hsize_t> unlimited = empty;
      unlimited[0] = H5S_UNLIMITED;
      std::vector<hsize_t> chunk =
          dims_of(std::min(layout_.chunk_elements, shard_capacity_), manifest_.element_shape);
      Hid space(H5Screate_simple(static_cast<int>(empty.size()), empty.data(), unlimited.data()));
      Hid properties(H5Pcreate(H5P_DATASET_CREATE));
      H5Pset_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data());
      if (layout_.gzip_level > 0)
        H5Pset_deflate(properties.get(), static_cast<unsigned>(layout_.gzip_level));
      shard->elements =
          Hid(H5Dcreate2(shard->file_id.get(), element_dataset(manifest_), file_type(manifest_),
                         space.get(), H5P_DEFAULT, properties.get(), H5P_DEFAULT));
      if (manifest_.has_labels) {
        const hsize_t zero = 0, no_limit = H5S_UNLIMITED, label_chunk = 4096;
        Hid label_space(H5Screate_simple(1, &zero, &no_limit));
        Hid label_properties(H5Pcreate(H5P_DATASET_CREATE));
        H5Pset_chunk(label_properties.get(), 1, &label_chunk);
        shard->labels =
            Hid(H5Dcreate2(shard->file_id.get(), "labels", H5T_STD_I64LE, label_space.get(),
                           H5P_DEFAULT, label_properties.get(), H5P_DEFAULT));
      }
    }
    const int64_t take = std::min(n, shard_capacity_ - shard->count);
    const std::string where = files::join(temp_dir_, shard->file);
    append_rows(shard->elements.get(), memory_type(manifest_),
                dims_of(take, manifest_.element_shape), static_cast<hsize_t>(shard->count), bytes,
                where);
    if (manifest_.has_labels) {
      append_rows(shard->labels.get(), H5T_NATIVE_INT64, {static_cast<hsize_t>(take)},
                  static_cast<hsize_t>(shard->count), labels, where);
      labels += take;
    }
    shard->count += take;
    manifest_.splits[split].count += take;
    bytes += take * element_bytes;
    n -= take;
  }
}

void DatasetWriter::close_shard(const std::string& split) {
  auto& shard = open_[split];
  const std::string path = files::join(temp_dir_, shard->file);
  if (H5Fflush(shard->file_id.get(), H5F_SCOPE_LOCAL) < 0)
    throw UserError(path, "could not be flushed", "free disk space");
  ShardEntry entry{shard->file, shard->begin, shard->begin + shard->count, ""};
  shard.reset();  // closes the HDF5 file before hashing it
  files::sync(path);
  entry.sha256 = sha256_file(path);
  manifest_.splits[split].shards.push_back(std::move(entry));
}

std::string DatasetWriter::finish() {
  for (auto& [split, shard] : open_) {
    if (shard)
      close_shard(split);
  }
  return manifest_to_json(manifest_);
}

void DatasetWriter::commit() {
  commit_parts({finish()});
}

void DatasetWriter::commit_parts(const std::vector<std::string>& parts) {
  Manifest merged = manifest_;
  merged.splits.clear();
  for (size_t p = 0; p < parts.size(); ++p) {
    const Manifest part = manifest_from_json(parts[p], temp_dir_ + " part " + std::to_string(p));
    for (const auto& [name, split] : part.splits) {
      SplitEntry& into = merged.splits[name];
      for (ShardEntry shard : split.shards) {
        shard.begin += into.count;
        shard.end += into.count;
        into.shards.push_back(std::move(shard));
      }
      into.count += split.count;
    }
  }
  if (merged.splits.empty()) {
    throw UserError(out_dir_, "would hold no elements", "at least one element");
  }
  write_manifest(merged, temp_dir_);
  files::sync(temp_dir_);
  if (::renameat2(AT_FDCWD, temp_dir_.c_str(), AT_FDCWD, out_dir_.c_str(), RENAME_NOREPLACE) != 0) {
    throw UserError(out_dir_, std::string("could not be created (") + std::strerror(errno) + ")",
                    "a new output directory", "The converted data is kept in " + temp_dir_ + ".");
  }
  committed_ = true;
  files::sync(files::parent(files::absolute(out_dir_)));
}

struct Dataset::Shard {
  Hid file_id, elements;
  std::vector<int64_t> labels;
};

Dataset::Dataset(std::string dir) : dir_(std::move(dir)), manifest_(read_manifest(dir_)) {}
Dataset::~Dataset() = default;

const Dataset::Shard& Dataset::shard(const std::string& split, size_t position) const {
  const std::string key = split + "/" + std::to_string(position);
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = shards_[key];
  if (slot)
    return *slot;
  silence_hdf5_errors();
  const ShardEntry& entry = manifest_.split(split, dir_).shards[position];
  const std::string path = files::join(dir_, entry.file);
  const std::string hint = "Run `ocm data verify " + dir_ + "` to check every shard.";
  auto s = std::make_unique<Shard>();
  s->file_id = Hid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!s->file_id.valid())
    throw UserError(path, "cannot be opened as HDF5 (missing or damaged)",
                    "a shard of this dataset", hint);
  s->elements = Hid(H5Dopen2(s->file_id.get(), element_dataset(manifest_), H5P_DEFAULT));
  if (!s->elements.valid()) {
    throw UserError(path, std::string("has no dataset `") + element_dataset(manifest_) + "`",
                    "a shard of this dataset", hint);
  }
  const std::vector<hsize_t> expected = dims_of(entry.end - entry.begin, manifest_.element_shape);
  Hid space(H5Dget_space(s->elements.get()));
  Hid type(H5Dget_type(s->elements.get()));
  std::vector<hsize_t> dims(expected.size());
  const bool type_ok = manifest_.dtype == "uint8"
                           ? H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1
                           : H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4;
  if (H5Sget_simple_extent_ndims(space.get()) != static_cast<int>(expected.size()) ||
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0 || dims != expected ||
      !type_ok) {
    throw UserError(
        path, "holds data of another shape or type than the manifest says",
        manifest_.dtype + " with " + std::to_string(entry.end - entry.begin) + " elements", hint);
  }
  if (manifest_.has_labels) {
    Hid labels(H5Dopen2(s->file_id.get(), "labels", H5P_DEFAULT));
    Hid label_space(labels.valid() ? H5Dget_space(labels.get()) : H5I_INVALID_HID);
    hsize_t n = 0;
    if (!labels.valid() || H5Sget_simple_extent_ndims(label_space.get()) != 1 ||
        H5Sget_simple_extent_dims(label_space.get(), &n, nullptr) < 0 || n != expected[0]) {
      throw UserError(path, "has no labels of the right length",
                      std::to_string(expected[0]) + " labels", hint);
    }
    s->labels.resize(n);
    if (H5Dread(labels.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->labels.data()) <
        0) {
      throw UserError(path, "labels cannot be read", "a readable shard", hint);
    }
    for (const int64_t label : s->labels) {
      if (label < 0 || label >= manifest_.num_classes) {
        throw UserError(path, "holds the label " + std::to_string(label),
                        "labels in [0, " + std::to_string(manifest_.num_classes) + ")", hint);
      }
    }
  }
  slot = std::move(s);
  return *slot;
}

void Dataset::read(const std::string& split, const std::vector<int64_t>& indices, void* out,
                   int64_t* labels) const {
  const SplitEntry& entry = manifest_.split(split, dir_);
  const int64_t element_bytes = manifest_.element_bytes();
  auto* bytes = static_cast<unsigned char*>(out);
  const std::vector<hsize_t> one = dims_of(1, manifest_.element_shape);
  Hid memory_space(H5Screate_simple(static_cast<int>(one.size()), one.data(), nullptr));
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t index = indices[i];
    if (index < 0 || index >= entry.count) {
      throw std::out_of_range("element " + std::to_string(index) + " of split " + split);
    }
    const auto found =
        std::upper_bound(entry.shards.begin(), entry.shards.end(), index,
                         [](int64_t value, const ShardEntry& s) { return value < s.begin; });
    const size_t position = static_cast<size_t>(found - entry.shards.begin()) - 1;
    const Shard& s = shard(split, position);
    std::vector<hsize_t> start(one.size(), 0);
    start[0] = static_cast<hsize_t>(index - entry.shards[position].begin);
    Hid file_space(H5Dget_space(s.elements.get()));
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, one.data(),
                        nullptr);
    if (H5Dread(s.elements.get(), memory_type(manifest_), memory_space.get(), file_space.get(),
                H5P_DEFAULT, bytes + static_cast<int64_t>(i) * element_bytes) < 0) {
      throw UserError(files::join(dir_, entry.shards[position].file), "could not be read",
                      "an intact shard", "Run `ocm data verify " + dir_ + "`.");
    }
    if (labels != nullptr && manifest_.has_labels)
      labels[i] = s.labels[start[0]];
  }
}

int64_t verify_dataset(const std::string& dir) {
  const Dataset dataset(dir);
  int64_t checked = 0;
  for (const auto& [name, split] : dataset.manifest().splits) {
    for (size_t i = 0; i < split.shards.size(); ++i) {
      const ShardEntry& entry = split.shards[i];
      const std::string path = files::join(dir, entry.file);
      if (!files::exists(path))
        throw UserError(path, "is missing", "every shard the manifest lists");
      const std::string digest = sha256_file(path);
      if (digest != entry.sha256) {
        throw UserError(path, "has sha256 " + digest, entry.sha256 + " as the manifest records",
                        "The shard is damaged; convert the dataset again.");
      }
      std::vector<unsigned char> element(dataset.manifest().element_bytes());
      dataset.read(name, {entry.begin}, element.data(), nullptr);  // opens and checks the shard
      checked += entry.end - entry.begin;
    }
  }
  return checked;
}

}  // namespace ocm::data
