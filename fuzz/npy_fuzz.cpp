// The header of a .npy array: magic, version, header length, and the dict of descr,
// fortran_order and shape.
#include "data/npy.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ocm::fuzz::user_errors_only(
      [&] { ocm::data::parse_npy_header(reinterpret_cast<const char*>(data), size, "fuzz.npy"); });
  return 0;
}
