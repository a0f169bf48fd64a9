// The HDF5 files ocm reads back, as parsed once their checksum has matched (Note [verified
// before HDF5]): a checkpoint when the input's first byte is even, statistics of `ocm stats`
// when it is odd (fuzz/inputs.h). No mutated input would pass the checksum, so the harness calls
// the parsers behind it. What it finds inside libhdf5 is kept in fuzz/findings/hdf5/; the
// tests' short run leaves this harness out.
#include <unistd.h>

#include <string>

#include "checkpoints/checkpoint.h"
#include "eval/statistics.h"
#include "fuzz/inputs.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string stem = "/tmp/ocm-fuzz-hdf5-" + std::to_string(getpid());
  const ocm::fuzz::Hdf5Input input =
      ocm::fuzz::write_hdf5_input(stem, ocm::fuzz::text_of(data, size));
  if (input.path.empty())
    return 0;
  ocm::fuzz::user_errors_only([&] {
    if (input.checkpoint)
      ocm::checkpoints::read_checkpoint_file(input.path);
    else
      ocm::eval::read_statistics_file(input.path);
  });
  return 0;
}
