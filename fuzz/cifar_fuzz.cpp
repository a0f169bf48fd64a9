// CIFAR-10's binary tarball as `ocm data prepare cifar10` reads it: the gzip stream (read as
// it is when not compressed), the ustar headers, the batch members and their records.
#include <unistd.h>

#include <fstream>
#include <string>

#include "common/files.h"
#include "data/converters.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/ocm-fuzz-cifar-" + std::to_string(getpid());
  ocm::files::remove_tree(dir);
  ocm::files::create_directories(dir);
  const std::string tarball = dir + "/cifar-10-binary.tar.gz";
  std::ofstream(tarball, std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  ocm::fuzz::user_errors_only(
      [&] { ocm::data::convert_cifar10(tarball, dir + "/out", ocm::data::ShardLayout{}); });
  return 0;
}
