// An .npz archive: the zip directory and members (through minizip) and each member's .npy
// header and size. The reader takes a path, so each input is written to one file per process.
#include <unistd.h>

#include <string>

#include "data/npz.h"
#include "fuzz/inputs.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/ocm-fuzz-" + std::to_string(getpid()) + ".npz";
  ocm::fuzz::write_file(path, ocm::fuzz::text_of(data, size));
  ocm::fuzz::user_errors_only([&] { ocm::data::read_npz(path); });
  return 0;
}
