// Reference statistics as .npz (mu and sigma: EDM, pytorch-fid, `ocm stats --out FILE.npz`), as
// `ocm eval --ref` reads them: the archive, the arrays' dtypes, shapes and values. (HDF5
// statistics are read only once their checksum matches; hdf5_fuzz.cpp covers what follows.)
#include <unistd.h>

#include <string>

#include "eval/statistics.h"
#include "fuzz/inputs.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/ocm-fuzz-statistics-" + std::to_string(getpid()) + ".npz";
  ocm::fuzz::write_file(path, ocm::fuzz::text_of(data, size));
  ocm::fuzz::user_errors_only([&] { ocm::eval::load_statistics(path); });
  return 0;
}
