#include "data/npy.h"

#include <cstring>
#include <limits>
#include <regex>

#include "common/error.h"

namespace ocm::data {
namespace {

constexpr size_t kLongestHeader = 1 << 20;  // numpy writes tens of bytes; refuse absurd lengths

uint32_t little_endian(const unsigned char* bytes, int count) {
  uint32_t value = 0;
  for (int i = count - 1; i >= 0; --i)
    value = (value << 8) | bytes[i];
  return value;
}

std::vector<int64_t> parse_shape(const std::string& header, const std::string& where) {
  std::smatch match;
  if (!std::regex_search(header, match, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw UserError(where, "has no shape in its header", "a .npy file");
  std::vector<int64_t> dims;
  const std::string list = match[1].str();
  const std::regex number("\\d+");
  for (std::sregex_iterator it(list.begin(), list.end(), number), end; it != end; ++it) {
    const std::string digits = it->str();
    if (digits.size() > 12)
      throw UserError(where, "declares the size " + digits, "a plausible array size");
    dims.push_back(std::stoll(digits));
  }
  return dims;
}

}  // namespace

NpyHeader parse_npy_header(const char* bytes, size_t size, const std::string& where) {
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes);
  if (size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0 || raw[6] < 1 || raw[6] > 3) {
    throw UserError(where, "is not a .npy file (no \\x93NUMPY header)",
                    "an array saved with numpy.save");
  }
  const int length_bytes = raw[6] == 1 ? 2 : 4;
  const size_t start = 8 + static_cast<size_t>(length_bytes);
  if (size < start)  // versions 2 and 3 need 12 bytes before the header
    throw UserError(where, "has a damaged header", "a .npy file");
  const size_t header_length = little_endian(raw + 8, length_bytes);
  if (header_length > kLongestHeader || start + header_length > size)
    throw UserError(where, "has a damaged header", "a .npy file");
  const std::string header(bytes + start, header_length);
  NpyHeader out;
  std::smatch match;
  if (!std::regex_search(header, match, std::regex("'descr':\\s*'([<>|=]?[a-zA-Z]\\d*)'")))
    throw UserError(where, "has no dtype in its header", "a .npy file");
  out.descr = match[1].str();
  out.fortran_order = std::regex_search(header, std::regex("'fortran_order':\\s*True"));
  out.shape = parse_shape(header, where);
  out.data_offset = start + header_length;
  return out;
}

std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string dims;  // numpy's spelling: (), (3,), (3, 4)
  for (size_t i = 0; i < shape.size(); ++i)
    dims += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1)
    dims += ',';
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const bool long_header = dict.size() + 12 > std::numeric_limits<uint16_t>::max();
  const size_t preamble = long_header ? 12 : 10;
  dict.append(63 - (preamble + dict.size()) % 64, ' ');  // then '\n' ends it on a boundary
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(long_header ? 2 : 1);
  out += '\0';
  const size_t length = dict.size();
  for (size_t i = 0; i < (long_header ? 4u : 2u); ++i)
    out += static_cast<char>((length >> (8 * i)) & 0xff);
  return out + dict;
}

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0 || (d > 0 && n > std::numeric_limits<int64_t>::max() / d))
      return -1;
    n *= d;
  }
  return n;
}

}  // namespace ocm::data
