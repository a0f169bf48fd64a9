// Every input of the fuzz corpus (fuzz/corpus/<reader>/: the seeds and each input that once
// crashed a reader) through the same reader as its harness, in the ordinary build: each is read
// or refused with a UserError, nothing else (Note [fuzzing] in fuzz/run.sh).
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "data/manifest.h"
#include "data/npy.h"
#include "data/npz.h"
#include "tests/support/user_error.h"

namespace ocm {
namespace {

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `read` on every file of the reader's corpus folder; returns how many it read.
int replay(const std::string& reader, const std::function<void(const std::string&)>& read) {
  const std::filesystem::path folder =
      std::filesystem::path(OCM_SOURCE_DIR) / "fuzz/corpus" / reader;
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    SCOPED_TRACE(entry.path().string());
    try {
      read(entry.path().string());
    } catch (const UserError&) {
    }
    ++count;
  }
  return count;
}

TEST(FuzzCorpus, ConfigsAreReadOrRefusedWithAUserError) {
  EXPECT_GE(replay("config", [](const std::string& p) { parse_config(bytes_of(p), p); }), 1);
}

TEST(FuzzCorpus, ManifestsAreReadOrRefusedWithAUserError) {
  EXPECT_GE(replay("manifest",
                   [](const std::string& p) {
                     const std::string text = bytes_of(p);
                     try {
                       data::manifest_from_json(text, p);
                     } catch (const UserError&) {
                     }
                     data::mixture_from_json(text, p);
                   }),
            3);
}

TEST(FuzzCorpus, NpyHeadersAreReadOrRefusedWithAUserError) {
  EXPECT_GE(replay("npy",
                   [](const std::string& p) {
                     const std::string bytes = bytes_of(p);
                     data::parse_npy_header(bytes.data(), bytes.size(), p);
                   }),
            6);
}

TEST(FuzzCorpus, NpzArchivesAreReadOrRefusedWithAUserError) {
  EXPECT_GE(replay("npz", [](const std::string& p) { data::read_npz(p); }), 3);
}

// The inputs the fuzzer found, each with the message it now gets. The first read one to three
// bytes past its buffer, which only a sanitizer sees: fuzz_short replays it under
// AddressSanitizer, this test checks the message.
TEST(FuzzCorpus, AVersionThreeNpyCutBeforeItsHeaderLengthIsDamaged) {
  // 11 bytes: magic, version 3, and only 3 of the 4 bytes of the header length.
  const std::string bytes =
      bytes_of(std::string(OCM_SOURCE_DIR) + "/fuzz/corpus/npy/crash-short-version3-length");
  ASSERT_EQ(bytes.size(), 11u);
  test::expect_user_error([&] { data::parse_npy_header(bytes.data(), bytes.size(), "x.npy"); },
                          {"x.npy", "damaged header"});
}

TEST(FuzzCorpus, AJsonNumberBeyondDoubleIsAUserError) {
  test::expect_user_error([] { data::mixture_from_json(R"({"weights": 5e5555553})", "spec.json"); },
                          {"spec.json", "number overflow"});
}

}  // namespace
}  // namespace ocm
