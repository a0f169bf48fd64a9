// The .npy format (numpy's NEP 1): a magic string, a version, a Python-literal header dictionary
// {'descr', 'fortran_order', 'shape'} and the raw array. Read for `ocm data prepare arrays` and
// inside .npz archives, written for .npz archives (data/npz.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ocm::data {

struct NpyHeader {
  std::string descr;  // numpy's dtype string, e.g. "<f4", "|u1", "<f8"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes before the array
};

// Parses the header at the start of `bytes`; throws UserError naming `where` when the bytes are
// not a .npy file or the header is damaged. The byte order and type are left to the caller.
NpyHeader parse_npy_header(const char* bytes, size_t size, const std::string& where);

// The bytes before an array of `descr` and `shape` in C order: version 1.0 while the header
// fits its 16-bit length, 2.0 beyond; padded so that the data starts on a 64-byte boundary.
std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape);

// The product of the dimensions, or -1 when it overflows int64.
int64_t element_count(const std::vector<int64_t>& shape);

}  // namespace ocm::data
