#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "data/converters.h"

namespace ocm::data {
namespace {

constexpr int64_t kRecordBytes = 1 + 3 * 32 * 32;
constexpr int64_t kMaxMemberBytes = int64_t{1} << 30;
constexpr size_t kMemberReadPiece = size_t{1} << 20;
const char* const kBatches[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

bool is_batch(const std::string& base) {
  for (const char* name : kBatches) {
    if (base == name)
      return true;
  }
  return false;
}

// Reads the batch files out of the official tarball (gzip-compressed ustar), skipping the rest.
std::map<std::string, std::vector<uint8_t>> read_tarball(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), &gzclose);
  if (!file)
    throw UserError(path, "cannot be opened", "cifar-10-binary.tar.gz or its extracted folder");
  std::map<std::string, std::vector<uint8_t>> members;
  auto read_exactly = [&](void* out, size_t n) {
    if (gzread(file.get(), out, static_cast<unsigned>(n)) != static_cast<int>(n)) {
      throw UserError(path, "ends early or is not a gzip-compressed tar archive",
                      "the complete cifar-10-binary.tar.gz",
                      "The download may be truncated; fetch it again.");
    }
  };
  std::array<char, 512> header;
  while (true) {
    read_exactly(header.data(), header.size());
    if (header[0] == '\0')
      break;  // the archive's end marker
    if (std::memcmp(header.data() + 257, "ustar", 5) != 0) {
      throw UserError(path, "is not a tar archive (no ustar header)", "cifar-10-binary.tar.gz");
    }
    const std::string name(header.data(), strnlen(header.data(), 100));
    const std::string size_field(header.data() + 124, strnlen(header.data() + 124, 12));
    char* end = nullptr;
    const long long size = std::strtoll(size_field.c_str(), &end, 8);
    if (size < 0 || size > kMaxMemberBytes) {
      throw UserError(path + ":" + name, "declares " + size_field + " (octal) bytes",
                      "a CIFAR-10 batch file");
    }
    const int64_t padded = (size + 511) / 512 * 512;
    const std::string base = files::filename(name);
    if (header[156] == '0' || header[156] == '\0') {
      if (is_batch(base)) {
        // In pieces, so a declared size beyond the archive fails at its end before it is
        // allocated (as the IDX reader does).
        std::vector<uint8_t> bytes;
        for (size_t done = 0; done < static_cast<size_t>(padded);) {
          const size_t piece = std::min(kMemberReadPiece, static_cast<size_t>(padded) - done);
          bytes.resize(done + piece);
          read_exactly(bytes.data() + done, piece);
          done += piece;
        }
        bytes.resize(static_cast<size_t>(size));
        members[base] = std::move(bytes);
        continue;
      }
    }
    if (gzseek(file.get(), padded, SEEK_CUR) < 0)
      throw UserError(path, "ends inside " + name, "a complete archive");
  }
  return members;
}

std::map<std::string, std::vector<uint8_t>> read_folder(const std::string& dir) {
  std::map<std::string, std::vector<uint8_t>> members;
  const std::string inner = files::join(dir, "cifar-10-batches-bin");
  const std::string root = files::is_directory(inner) ? inner : dir;
  for (const char* name : kBatches) {
    const std::string path = files::join(root, name);
    if (!files::exists(path))
      continue;
    const int64_t size = files::file_size(path);
    if (size < 0 || size > kMaxMemberBytes)
      throw UserError(path, "is unreadable or over 1 GiB", "a CIFAR-10 batch file");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file || std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
      throw UserError(path, "cannot be read", "a readable CIFAR-10 batch file");
    }
    members[name] = std::move(bytes);
  }
  return members;
}

}  // namespace

void convert_cifar10(const std::string& source, const std::string& out_dir,
                     const ShardLayout& layout) {
  const auto members = files::is_directory(source) ? read_folder(source) : read_tarball(source);
  Manifest header;
  header.kind = "images";
  header.dtype = "uint8";
  header.element_shape = {32, 32, 3};
  header.has_labels = true;
  header.num_classes = 10;
  header.source = "CIFAR-10 binary version from " + files::absolute(source);
  // Check everything before the writer creates anything.
  for (const char* name : kBatches) {
    const auto found = members.find(name);
    if (found == members.end()) {
      throw UserError(source, std::string("has no ") + name,
                      "the five data batches and test_batch.bin");
    }
    const auto& bytes = found->second;
    if (bytes.empty() || bytes.size() % kRecordBytes != 0) {
      throw UserError(source + ": " + name, "holds " + std::to_string(bytes.size()) + " bytes",
                      "whole records of 3073 bytes (a label and 32x32x3 pixels)");
    }
    for (size_t r = 0; r < bytes.size(); r += kRecordBytes) {
      if (bytes[r] > 9) {
        throw UserError(
            source + ": " + name,
            "record " + std::to_string(r / kRecordBytes) + " has label " + std::to_string(bytes[r]),
            "labels 0 to 9");
      }
    }
  }
  DatasetWriter writer(out_dir, header, layout);
  for (const char* name : kBatches) {
    const auto& bytes = members.at(name);
    const int64_t n = static_cast<int64_t>(bytes.size()) / kRecordBytes;
    std::vector<uint8_t> images(static_cast<size_t>(n) * 3072);
    std::vector<int64_t> labels(n);
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* record = bytes.data() + i * kRecordBytes;
      labels[i] = record[0];
      // Records are planar (all red, all green, all blue); shards are [H, W, C].
      for (int64_t c = 0; c < 3; ++c) {
        for (int64_t p = 0; p < 1024; ++p)
          images[i * 3072 + p * 3 + c] = record[1 + c * 1024 + p];
      }
    }
    writer.append(std::strcmp(name, "test_batch.bin") == 0 ? "test" : "train", images.data(),
                  labels.data(), n);
  }
  writer.commit();
}

}  // namespace ocm::data
