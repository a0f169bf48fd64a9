// A dataset's manifest.json (splits, shards and their ranges) and a mixture spec, as JSON text.
#include "data/manifest.h"
#include "fuzz/user_errors_only.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = ocm::fuzz::text_of(data, size);
  ocm::fuzz::user_errors_only([&] { ocm::data::manifest_from_json(text, "manifest.json"); });
  ocm::fuzz::user_errors_only([&] { ocm::data::mixture_from_json(text, "mixture.json"); });
  return 0;
}
