#include "checkpoints/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

namespace ocm::checkpoints {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeOf {
  const char* name;
  torch::ScalarType scalar;
};

const std::vector<DtypeOf>& dtypes() {
  static const std::vector<DtypeOf> known = {{"F64", torch::kFloat64}, {"F32", torch::kFloat32},
                                             {"F16", torch::kHalf},    {"BF16", torch::kBFloat16},
                                             {"I64", torch::kInt64},   {"I32", torch::kInt32},
                                             {"I16", torch::kInt16},   {"I8", torch::kInt8},
                                             {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  return known;
}

// Where one tensor's bytes are, and what they hold.
struct Entry {
  std::string name;
  torch::ScalarType scalar;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

Entry entry_of(const std::string& path, const std::string& name, const json& spec) {
  const std::string where = path + ": tensor `" + name + "`";
  if (!spec.is_object() || !spec.contains("dtype") || !spec.contains("shape") ||
      !spec.contains("data_offsets"))
    throw UserError(where, "is not described by dtype, shape and data_offsets",
                    "{\"dtype\": ..., \"shape\": [...], \"data_offsets\": [begin, end]}");
  Entry e{name, torch::kFloat32, {}, 0, 0};
  const auto dtype = std::find_if(dtypes().begin(), dtypes().end(), [&](const DtypeOf& d) {
    return spec["dtype"].is_string() && spec["dtype"].get<std::string>() == d.name;
  });
  if (dtype == dtypes().end())
    throw UserError(where, "has dtype " + spec["dtype"].dump(),
                    "F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL");
  e.scalar = dtype->scalar;
  const json& shape = spec["shape"];
  const json& offsets = spec["data_offsets"];
  auto natural = [](const json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  };
  if (!shape.is_array() || shape.size() > 16 || !std::all_of(shape.begin(), shape.end(), natural))
    throw UserError(where, "has shape " + shape.dump(), "a list of at most 16 sizes >= 0");
  if (!offsets.is_array() || offsets.size() != 2 || !natural(offsets[0]) || !natural(offsets[1]) ||
      offsets[0].get<uint64_t>() > offsets[1].get<uint64_t>())
    throw UserError(where, "has data_offsets " + offsets.dump(), "[begin, end] with begin <= end");
  for (const auto& size : shape) {
    if (size.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw UserError(where, "has shape " + shape.dump(), "sizes that fit 63 bits");
    e.shape.push_back(size.get<int64_t>());
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  return e;
}

// The elements times the element size, or an error when that overflows or differs from the
// byte range the header gives.
void check_size(const std::string& path, const Entry& e) {
  uint64_t count = 1;
  for (const int64_t size : e.shape) {
    if (size != 0 && count > UINT64_MAX / static_cast<uint64_t>(size))
      throw UserError(path + ": tensor `" + e.name + "`", "has a shape too large to hold",
                      "a shape whose size fits the file");
    count *= static_cast<uint64_t>(size);
  }
  const uint64_t element = torch::elementSize(e.scalar);
  if (count > UINT64_MAX / element || count * element != e.end - e.begin)
    throw UserError(path + ": tensor `" + e.name + "`",
                    "spans " + std::to_string(e.end - e.begin) + " bytes",
                    std::to_string(count) + " elements of " + std::to_string(element) +
                        " bytes, as its shape and dtype say");
}

// The tensors sorted by offset must cover [0, data_bytes) exactly.
void check_tiling(const std::string& path, std::vector<Entry>& entries, uint64_t data_bytes) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;  // an empty one first
  });
  uint64_t position = 0;
  for (const Entry& e : entries) {
    if (e.begin != position)
      throw UserError(path + ": tensor `" + e.name + "`",
                      "starts at byte " + std::to_string(e.begin) + " of the data",
                      "byte " + std::to_string(position) +
                          ": tensors follow each other with no "
                          "gap or overlap");
    position = e.end;
  }
  if (position != data_bytes)
    throw UserError(path, "holds " + std::to_string(data_bytes) + " bytes of tensor data",
                    std::to_string(position) + ", what its header describes",
                    "The file is truncated or has bytes after its last tensor.");
}

json read_header(std::ifstream& in, const std::string& path, int64_t file_bytes,
                 uint64_t* header_bytes) {
  unsigned char size[8];
  if (file_bytes < 8 || !in.read(reinterpret_cast<char*>(size), 8))
    throw UserError(path, "is shorter than 8 bytes", "a .safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | size[i];
  if (n > kMaxHeaderBytes || n > static_cast<uint64_t>(file_bytes) - 8)
    throw UserError(
        path, "declares a header of " + std::to_string(n) + " bytes",
        "at most 100 MB and within the file's " + std::to_string(file_bytes) + " bytes");
  std::string text(n, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n)))
    throw UserError(path, "cannot be read", "a readable file");
  *header_bytes = n;
  try {
    json header = json::parse(text);
    if (!header.is_object())
      throw UserError(path, "has a header that is not a JSON object", "{name: {...}, ...}");
    return header;
  } catch (const json::exception& e) {
    throw UserError(path, std::string("has a header that is not JSON (") + e.what() + ")",
                    "a .safetensors file");
  }
}

std::map<std::string, std::string> metadata_of(const std::string& path, const json& value) {
  std::map<std::string, std::string> out;
  if (!value.is_object())
    throw UserError(path + ": __metadata__", "is " + value.dump().substr(0, 40),
                    "an object of strings");
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string())
      throw UserError(path + ": __metadata__." + key, "is not a string", "an object of strings");
    out[key] = text.get<std::string>();
  }
  return out;
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  const int64_t file_bytes = files::file_size(path);
  std::ifstream in(path, std::ios::binary);
  if (file_bytes < 0 || !in)
    throw UserError(path, "cannot be opened", "a readable .safetensors file");
  uint64_t header_bytes = 0;
  const json header = read_header(in, path, file_bytes, &header_bytes);
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, spec] : header.items()) {
    if (name == "__metadata__") {
      out.metadata = metadata_of(path, spec);
      continue;
    }
    entries.push_back(entry_of(path, name, spec));
    check_size(path, entries.back());
  }
  const uint64_t data_start = 8 + header_bytes;
  check_tiling(path, entries, static_cast<uint64_t>(file_bytes) - data_start);
  for (const Entry& e : entries) {
    // BOOL bytes are read as uint8 and checked: a bool holding another value is undefined.
    const bool boolean = e.scalar == torch::kBool;
    torch::Tensor tensor =
        torch::empty(e.shape, torch::TensorOptions().dtype(boolean ? torch::kUInt8 : e.scalar));
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    if (!in.read(static_cast<char*>(tensor.data_ptr()),
                 static_cast<std::streamsize>(e.end - e.begin)))
      throw UserError(path + ": tensor `" + e.name + "`", "cannot be read", "an intact file");
    if (boolean && tensor.numel() > 0 && tensor.max().item<uint8_t>() > 1)
      throw UserError(path + ": tensor `" + e.name + "`", "holds a BOOL byte other than 0 or 1",
                      "bytes 0 and 1");
    out.tensors[e.name] = boolean ? tensor.to(torch::kBool) : tensor;
  }
  return out;
}

}  // namespace ocm::checkpoints
