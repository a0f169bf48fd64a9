// .npz archives (data/npz.h) and the statistics and samples written through them, against numpy
// itself (Debian's python3-numpy): what we write numpy reads bit for bit, what numpy writes we
// read, and damaged or foreign files are refused naming the file and the field.
#include <cmath>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/files.h"
#include "data/npz.h"
#include "eval/image_files.h"
#include "eval/npz_tensors.h"
#include "eval/statistics.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm {
namespace {

// Runs a Python program with numpy; its stdout, or a test failure with its output.
std::string python(const std::string& program) {
  const std::string script = files::join(files::temp_directory(), "ocm-npz-test.py");
  std::ofstream(script) << "import sys\nimport numpy as np\n" << program;
  const test::Outcome outcome = test::run_command(std::string(OCM_PYTHON3) + " " + script);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  return outcome.output;
}

std::string raw_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Npz, SamplesWeWriteAreWhatNumpyLoads) {
  test::TempDir tmp("ocm-npz-test");
  const torch::Tensor images =
      torch::randint(0, 256, {5, 7, 6, 3}, torch::TensorOptions().dtype(torch::kUInt8));
  eval::write_samples(tmp.join("samples.npz"), images);
  python("f = np.load('" + tmp.join("samples.npz") + "')\n" +
         "assert list(f.keys()) == ['arr_0'], f.keys()\n" +
         "a = f['arr_0']\nassert a.dtype == np.uint8 and a.shape == (5, 7, 6, 3), (a.dtype, "
         "a.shape)\n" +
         "open('" + tmp.join("bytes") + "', 'wb').write(a.tobytes())\n");
  const std::string expected(static_cast<const char*>(images.data_ptr()), images.nbytes());
  EXPECT_EQ(raw_bytes(tmp.join("bytes")), expected);
}

TEST(Npz, StatisticsRoundTripThroughNumpyInBothDirections) {
  test::TempDir tmp("ocm-npz-test");
  eval::FeatureStatistics s;
  s.mean = torch::randn({6}, torch::kFloat64);
  const torch::Tensor a = torch::randn({6, 6}, torch::kFloat64);
  s.covariance = a.matmul(a.t());
  eval::save_statistics(tmp.join("ours.npz"), s);
  // numpy reads ours exactly, and writes them back (savez, then savez_compressed, as float32).
  python("f = np.load('" + tmp.join("ours.npz") + "')\n" +
         "assert f['mu'].dtype == np.float64 and f['sigma'].shape == (6, 6)\n" + "np.savez('" +
         tmp.join("theirs.npz") + "', mu=f['mu'], sigma=f['sigma'])\n" + "np.savez_compressed('" +
         tmp.join("compressed.npz") +
         "', sigma=f['sigma'].astype(np.float32), mu=f['mu'].astype(np.float32), "
         "arr_0=np.zeros(3))\n");
  const eval::FeatureStatistics back = eval::load_statistics(tmp.join("theirs.npz"));
  EXPECT_TRUE(torch::equal(back.mean, s.mean));
  EXPECT_TRUE(torch::equal(back.covariance, s.covariance));
  const eval::FeatureStatistics compressed = eval::load_statistics(tmp.join("compressed.npz"));
  EXPECT_TRUE(torch::equal(compressed.mean, s.mean.to(torch::kFloat32).to(torch::kFloat64)));
  EXPECT_TRUE(
      torch::equal(compressed.covariance, s.covariance.to(torch::kFloat32).to(torch::kFloat64)));
}

TEST(Npz, NumpyHeadersOfEveryShapeAndDtypeReadBack) {
  test::TempDir tmp("ocm-npz-test");
  python("np.savez('" + tmp.join("many.npz") + "', scalar=np.float64(2.5), " +
         "empty=np.zeros((0, 3), np.float32), ints=np.arange(12, dtype=np.int64).reshape(3, 4), " +
         "big=np.arange(70000, dtype=np.uint8))\n");
  const auto arrays = data::read_npz(tmp.join("many.npz"));
  ASSERT_EQ(arrays.size(), 4u);
  EXPECT_TRUE(arrays.at("scalar").shape.empty());
  EXPECT_EQ(arrays.at("scalar").bytes.size(), 8u);
  EXPECT_EQ(arrays.at("empty").shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(arrays.at("ints").descr, "<i8");
  EXPECT_EQ(arrays.at("ints").shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(arrays.at("big").bytes.size(), 70000u);
  EXPECT_EQ(static_cast<unsigned char>(arrays.at("big").bytes[69999]), 69999 % 256);
  // Our writer handles the same shapes; numpy agrees on each.
  data::write_npz(tmp.join("ours.npz"), {{"scalar", arrays.at("scalar")},
                                         {"empty", arrays.at("empty")},
                                         {"ints", arrays.at("ints")}});
  EXPECT_EQ(python("f = np.load('" + tmp.join("ours.npz") + "')\n" +
                   "print(f['scalar'][()], f['empty'].shape, f['ints'][2, 3])\n"),
            "2.5 (0, 3) 11\n");
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Npz, DamagedAndForeignFilesAreRefusedNamingTheFileAndField) {
  test::TempDir tmp("ocm-npz-test");
  const std::string good = tmp.join("good.npz");
  eval::FeatureStatistics s;
  s.mean = torch::zeros({4}, torch::kFloat64);
  s.covariance = torch::eye(4, torch::kFloat64);
  eval::save_statistics(good, s);
  const std::string bytes = raw_bytes(good);
  write_bytes(tmp.join("truncated.npz"), bytes.substr(0, bytes.size() / 2));
  test::expect_user_error([&] { eval::load_statistics(tmp.join("truncated.npz")); },
                          {"truncated.npz", "not a zip archive"});
  std::string flipped = bytes;
  // The last byte of mu's values: just before the local header (30 bytes) of sigma.npy.
  const size_t last_of_mu = bytes.find("sigma.npy") - 31;
  flipped[last_of_mu] = static_cast<char>(flipped[last_of_mu] ^ 0x5a);
  write_bytes(tmp.join("flipped.npz"), flipped);
  test::expect_user_error([&] { eval::load_statistics(tmp.join("flipped.npz")); },
                          {"flipped.npz", "CRC"});
  write_bytes(tmp.join("text.npz"), "mu, sigma\n");
  test::expect_user_error([&] { eval::load_statistics(tmp.join("text.npz")); },
                          {"text.npz", "not a zip archive"});
  python("np.savez('" + tmp.join("ints.npz") + "', mu=np.zeros(4, np.int32), sigma=np.eye(4))\n" +
         "np.savez('" + tmp.join("flat.npz") + "', mu=np.zeros(4), sigma=np.zeros(16))\n" +
         "np.savez('" + tmp.join("nan.npz") + "', mu=np.full(4, np.nan), sigma=np.eye(4))\n" +
         "np.savez('" + tmp.join("images.npz") + "', arr_0=np.zeros((2, 4, 4, 3), np.uint8))\n" +
         "np.savez('" + tmp.join("mismatch.npz") + "', mu=np.zeros(4), sigma=np.eye(5))\n");
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"ints.npz", {"ints.npz:mu", "'<i4'", "float64"}},
      {"flat.npz", {"flat.npz:sigma", "1 dimensions"}},
      {"nan.npz", {"nan.npz", "non-finite"}},
      {"images.npz", {"images.npz", "no array `mu`"}},
      {"mismatch.npz", {"mismatch.npz", "sigma of shape [D, D]"}},
  };
  for (const auto& [file, parts] : cases)
    test::expect_user_error([&] { eval::load_statistics(tmp.join(file)); }, parts);
  // A member whose bytes do not match its header.
  data::NpyArray short_array{"<f8", {4}, std::string(24, '\0')};
  EXPECT_THROW(data::write_npz(tmp.join("short.npz"), {{"mu", short_array}}), std::logic_error);
  EXPECT_FALSE(files::exists(tmp.join("short.npz")));
}

TEST(Npz, SamplesRefuseAnUnknownExtensionBeforeWritingAnything) {
  test::TempDir tmp("ocm-npz-test");
  test::expect_user_error([] { eval::check_samples_path("samples.npy", true); },
                          {"samples.npy", "'.npy'", ".npz"});
  test::expect_user_error([] { eval::check_samples_path("points.png", false); },
                          {"points.png", "vector data"});
  eval::check_samples_path("samples.h5", true);
  eval::check_samples_path("samples.npz", false);
}

}  // namespace
}  // namespace ocm
