// `ocm data prepare arrays`: float arrays (.npy or HDF5) for vector and latent data.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "common/hdf5.h"
#include "data/converters.h"
#include "data/npy.h"

namespace ocm::data {
namespace {

constexpr int64_t kBlockBytes = 64 << 20;  // converted a block of rows at a time

// Rows [first, first + n) of a float array source, as float32.
class ArraySource {
 public:
  virtual ~ArraySource() = default;
  virtual void read(int64_t first, int64_t n, float* out) = 0;
  int64_t rows = 0;
  std::vector<int64_t> element_shape;
};

class NpySource : public ArraySource {
 public:
  explicit NpySource(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_)
      throw UserError(path, "cannot be opened", "a .npy file");
    std::string head(static_cast<size_t>(std::min<int64_t>(files::file_size(path), 1 << 21)), '\0');
    in_.read(head.data(), static_cast<std::streamsize>(head.size()));
    const NpyHeader header = parse_npy_header(head.data(), head.size(), path);
    const std::string& descr = header.descr;
    const bool has_order = std::string("<>|=").find(descr[0]) != std::string::npos;
    const std::string kind = has_order ? descr.substr(1) : descr;
    if ((kind != "f4" && kind != "f8") || descr[0] == '>') {
      throw UserError(path, "holds dtype '" + descr + "'", "little-endian float32 or float64",
                      "Convert with array.astype('float32').");
    }
    double_ = kind == "f8";
    if (header.fortran_order) {
      throw UserError(path, "is stored in Fortran order", "a C-ordered array",
                      "Save numpy.ascontiguousarray(a).");
    }
    const std::vector<int64_t>& dims = header.shape;
    set_shape(path, dims);
    data_offset_ = static_cast<int64_t>(header.data_offset);
    const int64_t expected = data_offset_ + rows * row_values() * (double_ ? 8 : 4);
    if (files::file_size(path) != expected) {
      throw UserError(path, "is " + std::to_string(files::file_size(path)) + " bytes",
                      std::to_string(expected) + " for the shape in its header",
                      "The file may be truncated.");
    }
  }

  void read(int64_t first, int64_t n, float* out) override {
    const int64_t values = n * row_values();
    in_.seekg(data_offset_ + first * row_values() * (double_ ? 8 : 4));
    if (double_) {
      std::vector<double> buffer(values);
      in_.read(reinterpret_cast<char*>(buffer.data()), values * 8);
      std::transform(buffer.begin(), buffer.end(), out,
                     [](double v) { return static_cast<float>(v); });
    } else {
      in_.read(reinterpret_cast<char*>(out), values * 4);
    }
    if (!in_)
      throw UserError(path_, "could not be read", "a readable .npy file");
  }

  void set_shape(const std::string& where, const std::vector<int64_t>& dims) {
    if (dims.empty() || dims.size() > 5)
      throw UserError(where, "is not an array of 1 to 5 dimensions", "rows of elements");
    rows = dims[0];
    element_shape.assign(dims.begin() + 1, dims.end());
    if (element_shape.empty())
      element_shape = {1};
  }

  int64_t row_values() const {
    int64_t n = 1;
    for (const int64_t d : element_shape)
      n *= d;
    return n;
  }

 private:
  std::string path_;
  std::ifstream in_;
  bool double_ = false;
  int64_t data_offset_ = 0;
};

class Hdf5Source : public ArraySource {
 public:
  Hdf5Source(hid_t file, const std::string& name, const std::string& where) : where_(where) {
    dataset_ = Hid(H5Dopen2(file, name.c_str(), H5P_DEFAULT));
    if (!dataset_.valid())
      throw UserError(where, "has no dataset `" + name + "`", "a float array");
    Hid type(H5Dget_type(dataset_.get()));
    if (H5Tget_class(type.get()) != H5T_FLOAT)
      throw UserError(where, "is not a float array", "float32 or float64 data");
    Hid space(H5Dget_space(dataset_.get()));
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 1 || rank > 5)
      throw UserError(where, "is not an array of 1 to 5 dimensions", "rows of elements");
    std::vector<hsize_t> dims(rank);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    rows = static_cast<int64_t>(dims[0]);
    element_shape.assign(dims.begin() + 1, dims.end());
    if (element_shape.empty())
      element_shape = {1};
  }

  void read(int64_t first, int64_t n, float* out) override {
    Hid file_space(H5Dget_space(dataset_.get()));
    const int rank = H5Sget_simple_extent_ndims(file_space.get());
    std::vector<hsize_t> start(rank, 0), count(rank);
    H5Sget_simple_extent_dims(file_space.get(), count.data(), nullptr);
    start[0] = static_cast<hsize_t>(first);
    count[0] = static_cast<hsize_t>(n);
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                        nullptr);
    Hid memory_space(H5Screate_simple(rank, count.data(), nullptr));
    if (H5Dread(dataset_.get(), H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(), H5P_DEFAULT,
                out) < 0) {
      throw UserError(where_, "could not be read", "a readable HDF5 dataset");
    }
  }

 private:
  std::string where_;
  Hid dataset_;
};

}  // namespace

void convert_arrays(const std::string& source, const std::string& out_dir,
                    const ShardLayout& layout) {
  silence_hdf5_errors();
  std::vector<std::pair<std::string, std::unique_ptr<ArraySource>>> splits;
  Hid file;
  if (files::extension(source) == ".npy") {
    splits.emplace_back("train", std::make_unique<NpySource>(source));
  } else {
    if (H5Fis_hdf5(source.c_str()) <= 0) {
      throw UserError(source, "is neither a .npy file nor an HDF5 file",
                      "a float array in .npy or HDF5");
    }
    file = Hid(H5Fopen(source.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    for (const char* name : {"train", "val", "test"}) {
      if (H5Lexists(file.get(), name, H5P_DEFAULT) > 0) {
        splits.emplace_back(name,
                            std::make_unique<Hdf5Source>(file.get(), name, source + ":" + name));
      }
    }
    if (splits.empty()) {
      throw UserError(source, "has no dataset named train, val or test",
                      "one float dataset per split");
    }
  }
  Manifest header;
  header.kind = "arrays";
  header.dtype = "float32";
  header.element_shape = splits.front().second->element_shape;
  header.source = "float arrays from " + files::absolute(source);
  for (const auto& [name, split] : splits) {
    if (split->element_shape != header.element_shape) {
      throw UserError(source + ":" + name, "has another element shape than " + splits.front().first,
                      "one element shape for every split");
    }
    if (split->rows < 1)
      throw UserError(source + ":" + name, "has no rows", "at least one element");
    for (const int64_t d : split->element_shape) {
      if (d < 1 || d > 65536)
        throw UserError(source + ":" + name, "has an element dimension of " + std::to_string(d),
                        "sizes in [1, 65536]");
    }
  }
  DatasetWriter writer(out_dir, header, layout);
  const int64_t row_bytes = header.element_bytes();
  const int64_t block = std::max<int64_t>(1, kBlockBytes / row_bytes);
  std::vector<float> buffer;
  for (const auto& [name, split] : splits) {
    for (int64_t first = 0; first < split->rows; first += block) {
      const int64_t n = std::min(block, split->rows - first);
      buffer.resize(static_cast<size_t>(n * row_bytes / 4));
      split->read(first, n, buffer.data());
      for (const float v : buffer) {
        if (!std::isfinite(v)) {
          throw UserError(source + ":" + name,
                          "holds a NaN or infinite value near row " + std::to_string(first),
                          "finite numbers");
        }
      }
      writer.append(name, buffer.data(), nullptr, n);
    }
  }
  writer.commit();
}

}  // namespace ocm::data
