#include <zlib.h>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "data/converters.h"
#include "data/dataset.h"

namespace ocm::data {
namespace {

constexpr uint32_t kUnsignedByte = 0x08;
constexpr int64_t kMaxIdxElements = int64_t{1} << 31;
constexpr size_t kIdxReadPiece = size_t{1} << 20;

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;
};

// Reads a whole gzip-compressed IDX file of unsigned bytes with `rank` dimensions.
IdxArray read_idx(const std::string& path, int rank) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), &gzclose);
  if (!file)
    throw UserError(path, "cannot be opened", "an IDX file (.gz) from the MNIST distribution");
  auto read_exactly = [&](void* out, size_t n, const char* what) {
    const int got = gzread(file.get(), out, static_cast<unsigned>(n));
    if (got != static_cast<int>(n)) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      throw UserError(path,
                      std::string("ends early while reading ") + what +
                          (code < 0 ? std::string(" (") + message + ")" : std::string("")),
                      "a complete IDX file", "The download may be truncated; fetch it again.");
    }
  };
  std::array<uint8_t, 4> magic;
  read_exactly(magic.data(), 4, "the header");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != kUnsignedByte || magic[3] != rank) {
    throw UserError(
        path, "has the magic number " + std::to_string(magic[2]) + "/" + std::to_string(magic[3]),
        "unsigned-byte IDX data of rank " + std::to_string(rank),
        "Is this the right file (images idx3, labels idx1)?");
  }
  IdxArray array;
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    std::array<uint8_t, 4> be;
    read_exactly(be.data(), 4, "the dimensions");
    const int64_t size = (int64_t{be[0]} << 24) | (be[1] << 16) | (be[2] << 8) | be[3];
    if (size < 1 || (d > 0 && size > 65536)) {
      throw UserError(path, "declares a dimension of " + std::to_string(size),
                      "sizes in [1, 65536]");
    }
    total *= size;
    if (total > kMaxIdxElements)
      throw UserError(path, "declares over 2^31 bytes of data", "an MNIST-sized file");
    array.dims.push_back(size);
  }
  // In pieces: a header that declares more than the file holds fails at the file's end rather
  // than first allocating all it declares (up to 2 GiB; found by fuzz/idx_fuzz.cpp).
  for (size_t done = 0; done < static_cast<size_t>(total);) {
    const size_t piece = std::min(kIdxReadPiece, static_cast<size_t>(total) - done);
    array.bytes.resize(done + piece);
    read_exactly(array.bytes.data() + done, piece, "the data");
    done += piece;
  }
  uint8_t extra;
  if (gzread(file.get(), &extra, 1) != 0) {
    throw UserError(path, "has bytes after the declared data", "exactly the declared dimensions");
  }
  return array;
}

}  // namespace

void convert_idx(const std::string& name, const std::string& source_dir, const std::string& out_dir,
                 const ShardLayout& layout) {
  struct Pair {
    const char* split;
    const char* images;
    const char* labels;
  };
  const Pair pairs[] = {{"train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
                        {"test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}};
  std::vector<std::pair<IdxArray, IdxArray>> loaded;
  for (const Pair& pair : pairs) {
    const std::string images_path = files::join(source_dir, pair.images);
    const std::string labels_path = files::join(source_dir, pair.labels);
    IdxArray images = read_idx(images_path, 3);
    IdxArray labels = read_idx(labels_path, 1);
    if (images.dims[0] != labels.dims[0]) {
      throw UserError(labels_path, "has " + std::to_string(labels.dims[0]) + " labels",
                      std::to_string(images.dims[0]) + ", one per image of " + images_path);
    }
    for (const uint8_t label : labels.bytes) {
      if (label > 9)
        throw UserError(labels_path, "holds the label " + std::to_string(label), "labels 0 to 9");
    }
    if (!loaded.empty() &&
        images.dims != std::vector<int64_t>{images.dims[0], loaded[0].first.dims[1],
                                            loaded[0].first.dims[2]}) {
      throw UserError(images_path, "has another image size than the training images",
                      "one image size");
    }
    loaded.emplace_back(std::move(images), std::move(labels));
  }
  Manifest header;
  header.kind = "images";
  header.dtype = "uint8";
  header.element_shape = {loaded[0].first.dims[1], loaded[0].first.dims[2], 1};
  header.has_labels = true;
  header.num_classes = 10;
  header.source = name + " IDX files from " + files::absolute(source_dir);
  DatasetWriter writer(out_dir, header, layout);
  for (size_t i = 0; i < loaded.size(); ++i) {
    const auto& [images, labels] = loaded[i];
    const std::vector<int64_t> wide(labels.bytes.begin(), labels.bytes.end());
    writer.append(pairs[i].split, images.bytes.data(), wide.data(), images.dims[0]);
  }
  writer.commit();
}

}  // namespace ocm::data
