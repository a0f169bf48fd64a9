// MNIST's IDX files as `ocm data prepare fashion-mnist` reads them (fuzz/inputs.h says how
// one input becomes the four files).
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "data/converters.h"
#include "fuzz/inputs.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/ocm-fuzz-idx-" + std::to_string(getpid());
  if (!ocm::fuzz::write_idx_source(dir + "/source", ocm::fuzz::text_of(data, size)))
    return 0;
  ocm::files::remove_tree(dir + "/out");
  ocm::fuzz::user_errors_only([&] {
    ocm::data::convert_idx("fuzz", dir + "/source", dir + "/out", ocm::data::ShardLayout{});
  });
  return 0;
}
