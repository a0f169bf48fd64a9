// A checkpoint's manifest (ckpt-<step>.json: file, bytes, sha256, step, format_version) as
// load_checkpoint reads it before anything else (fuzz/inputs.h).
#include <unistd.h>

#include <string>

#include "checkpoints/checkpoint.h"
#include "fuzz/inputs.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/ocm-fuzz-manifest-" + std::to_string(getpid());
  const std::string checkpoint =
      ocm::fuzz::write_checkpoint_manifest_input(dir, ocm::fuzz::text_of(data, size));
  ocm::fuzz::user_errors_only([&] { ocm::checkpoints::load_checkpoint(checkpoint); });
  return 0;
}
