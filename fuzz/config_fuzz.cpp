// A run config (YAML) as `ocm train` reads it, every key checked against the schema.
#include "common/config.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ocm::fuzz::user_errors_only(
      [&] { ocm::parse_config(ocm::fuzz::text_of(data, size), "fuzz.yaml"); });
  return 0;
}
