#include "data/npz.h"

#include <minizip/unzip.h>
#include <minizip/zip.h>

#include <algorithm>
#include <memory>
#include <regex>

#include "common/error.h"
#include "common/files.h"

namespace ocm::data {
namespace {

constexpr size_t kChunk = 64 << 20;  // minizip reads and writes at most an unsigned int at once

struct ZipCloser {
  void operator()(void* zip) const { zipClose(zip, nullptr); }
};
struct UnzipCloser {
  void operator()(void* unzip) const { unzClose(unzip); }
};

void write_member(zipFile zip, const std::string& archive, const std::string& name,
                  const NpyArray& array) {
  if (element_count(array.shape) < 0 ||
      static_cast<size_t>(element_count(array.shape) * array.item_size()) != array.bytes.size())
    throw std::logic_error("write_npz: " + name + "'s bytes do not match its shape");
  const std::string header = npy_header(array.descr, array.shape);
  const bool large = header.size() + array.bytes.size() >= 0xffffffffu;
  zip_fileinfo info{};
  if (zipOpenNewFileInZip64(zip, (name + ".npy").c_str(), &info, nullptr, 0, nullptr, 0, nullptr,
                            /*method: stored*/ 0, 0, large ? 1 : 0) != ZIP_OK)
    throw UserError(archive, "could not take the member " + name + ".npy", "a writable location");
  bool ok = zipWriteInFileInZip(zip, header.data(), static_cast<unsigned>(header.size())) == ZIP_OK;
  for (size_t at = 0; ok && at < array.bytes.size(); at += kChunk) {
    const size_t n = std::min(kChunk, array.bytes.size() - at);
    ok = zipWriteInFileInZip(zip, array.bytes.data() + at, static_cast<unsigned>(n)) == ZIP_OK;
  }
  if (zipCloseFileInZip(zip) != ZIP_OK || !ok)
    throw UserError(archive, "could not be written", "free disk space");
}

// The whole current member, inflated; its CRC checked on closing.
std::string read_member(unzFile unzip, const std::string& where, uint64_t size) {
  if (unzOpenCurrentFile(unzip) != UNZ_OK)
    throw UserError(where, "cannot be opened inside the archive", "a stored or deflated member");
  // Grown as the bytes arrive: a directory that declares more than the member holds fails at
  // the member's end rather than first allocating all it declares (found by fuzzing).
  std::string bytes;
  size_t at = 0;
  while (at < size) {
    bytes.resize(at + static_cast<size_t>(std::min<uint64_t>(kChunk, size - at)));
    const int n =
        unzReadCurrentFile(unzip, bytes.data() + at, static_cast<unsigned>(bytes.size() - at));
    if (n <= 0)
      break;
    at += static_cast<size_t>(n);
  }
  bytes.resize(at);
  char extra = 0;
  const bool longer = at == size && unzReadCurrentFile(unzip, &extra, 1) > 0;
  const int closed = unzCloseCurrentFile(unzip);
  if (at != size || longer || closed != UNZ_OK) {
    throw UserError(where, closed == UNZ_CRCERROR ? "fails its CRC check" : "is damaged",
                    std::to_string(size) + " intact bytes", "The file may be truncated.");
  }
  return bytes;
}

NpyArray parse_member(const std::string& bytes, const std::string& where) {
  const NpyHeader header = parse_npy_header(bytes.data(), bytes.size(), where);
  NpyArray array{header.descr, header.shape, {}};
  if (header.fortran_order)
    throw UserError(where, "is stored in Fortran order", "a C-ordered array",
                    "Save numpy.ascontiguousarray(a).");
  if (header.descr[0] == '>' && array.item_size() > 1)
    throw UserError(where, "is big-endian (" + header.descr + ")", "a little-endian array");
  const int64_t count = element_count(header.shape);
  const int64_t item = array.item_size();
  if (count < 0 || item <= 0 || count > static_cast<int64_t>(bytes.size()) / item ||
      header.data_offset + static_cast<size_t>(count * item) != bytes.size()) {
    throw UserError(where, "holds " + std::to_string(bytes.size() - header.data_offset) + " bytes",
                    "exactly what its shape and dtype " + header.descr + " need");
  }
  array.bytes = bytes.substr(header.data_offset);
  return array;
}

}  // namespace

int64_t NpyArray::item_size() const {
  std::smatch match;
  if (!std::regex_match(descr, match, std::regex("[<>|=]?[a-zA-Z](\\d{1,2})")))
    return -1;
  return std::stoll(match[1].str());
}

void write_npz(const std::string& path,
               const std::vector<std::pair<std::string, NpyArray>>& arrays) {
  files::write_atomically(path, [&](const std::string& temporary) {
    std::unique_ptr<void, ZipCloser> zip(zipOpen64(temporary.c_str(), APPEND_STATUS_CREATE));
    if (zip == nullptr)
      throw UserError(path, "cannot be created", "a writable location");
    for (const auto& [name, array] : arrays)
      write_member(zip.get(), path, name, array);
    if (zipClose(zip.release(), nullptr) != ZIP_OK)
      throw UserError(path, "could not be written", "free disk space");
  });
}

std::map<std::string, NpyArray> read_npz(const std::string& path) {
  if (!files::exists(path))
    throw UserError(path, "does not exist", "an .npz file");
  std::unique_ptr<void, UnzipCloser> unzip(unzOpen64(path.c_str()));
  if (unzip == nullptr)
    throw UserError(path, "is not a zip archive", "an .npz file written by numpy.savez",
                    "The file may be truncated.");
  std::map<std::string, NpyArray> arrays;
  for (int status = unzGoToFirstFile(unzip.get()); status != UNZ_END_OF_LIST_OF_FILE;
       status = unzGoToNextFile(unzip.get())) {
    unz_file_info64 info;
    char name[512];
    if (status != UNZ_OK || unzGetCurrentFileInfo64(unzip.get(), &info, name, sizeof name, nullptr,
                                                    0, nullptr, 0) != UNZ_OK)
      throw UserError(path, "has a damaged directory", "an .npz file written by numpy.savez");
    const std::string member = name;
    if (member.size() < 5 || member.substr(member.size() - 4) != ".npy")
      continue;  // not an array; numpy.load ignores such members too
    const std::string where = path + ": " + member;
    if (info.uncompressed_size > (uint64_t{1} << 40))
      throw UserError(where, "declares " + std::to_string(info.uncompressed_size) + " bytes",
                      "an array under 1 TiB");
    arrays[member.substr(0, member.size() - 4)] =
        parse_member(read_member(unzip.get(), where, info.uncompressed_size), where);
  }
  return arrays;
}

}  // namespace ocm::data
