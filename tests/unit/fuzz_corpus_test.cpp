// Every input of the fuzz corpus (fuzz/corpus/<reader>/: the seeds and each input that once
// crashed a reader) through the same reader as its harness, in the ordinary build: each is read
// or refused with a UserError, nothing else (Note [fuzzing] in fuzz/run.sh).
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "checkpoints/checkpoint.h"
#include "common/config.h"
#include "common/error.h"
#include "common/files.h"
#include "data/converters.h"
#include "data/manifest.h"
#include "data/npy.h"
#include "data/npz.h"
#include "eval/statistics.h"
#include "fuzz/inputs.h"
#include "tests/support/temp_dir.h"
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

// The IDX and CIFAR-10 converters write a dataset when an input is good; into `out`, emptied.
void convert_into(const std::string& out, const std::function<void()>& convert) {
  files::remove_tree(out);
  convert();
  files::remove_tree(out);
}

TEST(FuzzCorpus, IdxFilesAreReadOrRefusedWithAUserError) {
  test::TempDir tmp("ocm-fuzz-corpus");
  EXPECT_GE(replay("idx",
                   [&](const std::string& p) {
                     if (!fuzz::write_idx_source(tmp.join("source"), bytes_of(p)))
                       return;
                     convert_into(tmp.join("out"), [&] {
                       data::convert_idx("fuzz", tmp.join("source"), tmp.join("out"), {});
                     });
                   }),
            4);
}

TEST(FuzzCorpus, CifarTarballsAreReadOrRefusedWithAUserError) {
  test::TempDir tmp("ocm-fuzz-corpus");
  EXPECT_GE(replay("cifar",
                   [&](const std::string& p) {
                     convert_into(tmp.join("out"),
                                  [&] { data::convert_cifar10(p, tmp.join("out"), {}); });
                   }),
            2);
}

TEST(FuzzCorpus, NpzArchivesAreReadOrRefusedWithAUserError) {
  EXPECT_GE(replay("npz", [](const std::string& p) { data::read_npz(p); }), 3);
}

TEST(FuzzCorpus, CheckpointManifestsAreReadOrRefusedWithAUserError) {
  test::TempDir tmp("ocm-fuzz-corpus");
  EXPECT_GE(replay("checkpoint_manifest",
                   [&](const std::string& p) {
                     checkpoints::load_checkpoint(
                         fuzz::write_checkpoint_manifest_input(tmp.join("run"), bytes_of(p)));
                   }),
            2);
}

TEST(FuzzCorpus, NpzStatisticsAreReadOrRefusedWithAUserError) {
  EXPECT_GE(replay("statistics", [](const std::string& p) { eval::load_statistics(p); }), 1);
}

// The hdf5 harness's seeds are good files, read by the parsers behind the checksums.
TEST(FuzzCorpus, TheHdf5SeedsAreRead) {
  test::TempDir tmp("ocm-fuzz-corpus");
  const std::string corpus = std::string(OCM_SOURCE_DIR) + "/fuzz/corpus/hdf5/";
  const fuzz::Hdf5Input checkpoint = fuzz::write_hdf5_input(
      tmp.join("checkpoint"), bytes_of(corpus + "checkpoint-mlp-score-phase"));
  ASSERT_TRUE(checkpoint.checkpoint);
  EXPECT_EQ(checkpoints::read_checkpoint_file(checkpoint.path).step, 2);
  const fuzz::Hdf5Input statistics =
      fuzz::write_hdf5_input(tmp.join("statistics"), bytes_of(corpus + "statistics-3d"));
  ASSERT_FALSE(statistics.checkpoint);
  EXPECT_EQ(eval::read_statistics_file(statistics.path).mean.size(0), 3);
}

// What broke libhdf5 (fuzz/findings/hdf5/) never reaches it through the readers ocm uses: a
// checkpoint must match its manifest and statistics their FILE.sha256 first (Note [verified
// before HDF5]).
TEST(FuzzCorpus, FilesThatBrokeHdf5AreRefusedBeforeItSeesThem) {
  test::TempDir tmp("ocm-fuzz-corpus");
  const std::filesystem::path findings =
      std::filesystem::path(OCM_SOURCE_DIR) / "fuzz/findings/hdf5";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(findings)) {
    SCOPED_TRACE(entry.path().string());
    const fuzz::Hdf5Input input = fuzz::write_hdf5_input(
        tmp.join("finding" + std::to_string(count++)), bytes_of(entry.path()));
    if (input.checkpoint) {
      const std::string manifest =
          fuzz::write_checkpoint_manifest_input(tmp.join("run"), "{}");  // not this file's
      std::filesystem::copy_file(input.path, manifest,
                                 std::filesystem::copy_options::overwrite_existing);
      test::expect_user_error([&] { checkpoints::load_checkpoint(manifest); }, {"manifest"});
    } else {
      test::expect_user_error([&] { eval::load_statistics(input.path); }, {".sha256"});
    }
  }
  EXPECT_GE(count, 3);
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

// This process's peak resident memory (VmHWM), after resetting it to the current size, so that
// an earlier test's peak does not hide this one's.
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}
long peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

// A labels file that declares 2.1e9 labels and holds none used to have them allocated (2 GB)
// before the read found the file's end.
TEST(FuzzCorpus, AnIdxFileDeclaringMoreThanItHoldsFailsBeforeAllocatingIt) {
  test::TempDir tmp("ocm-fuzz-corpus");
  ASSERT_TRUE(fuzz::write_idx_source(
      tmp.join("source"),
      bytes_of(std::string(OCM_SOURCE_DIR) + "/fuzz/corpus/idx/oom-declared-2gib-labels")));
  reset_peak_rss();
  const long before = peak_rss_kb();
  test::expect_user_error(
      [&] { data::convert_idx("fuzz", tmp.join("source"), tmp.join("out"), {}); },
      {"train-labels-idx1-ubyte.gz", "ends early while reading the data"});
  EXPECT_LT(peak_rss_kb() - before, 256 * 1024) << "the declared size was allocated";
}

// An .npz whose directory declares a 3.7 GB member used to have it allocated before its end.
TEST(FuzzCorpus, AnNpzMemberDeclaringMoreThanItHoldsFailsBeforeAllocatingIt) {
  reset_peak_rss();
  const long before = peak_rss_kb();
  test::expect_user_error(
      [] {
        eval::load_statistics(std::string(OCM_SOURCE_DIR) +
                              "/fuzz/corpus/statistics/oom-declared-3-7gb-member.npz");
      },
      {"oom-declared-3-7gb-member"});
  EXPECT_LT(peak_rss_kb() - before, 256 * 1024) << "the declared size was allocated";
}

TEST(FuzzCorpus, AJsonNumberBeyondDoubleIsAUserError) {
  test::expect_user_error([] { data::mixture_from_json(R"({"weights": 5e5555553})", "spec.json"); },
                          {"spec.json", "number overflow"});
}

}  // namespace
}  // namespace ocm
