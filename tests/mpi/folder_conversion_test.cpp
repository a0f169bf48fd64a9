// Two ranks convert one image folder together; the result equals a one-process conversion.
#include <mpi.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include <gtest/gtest.h>

#include "data/converters.h"
#include "data/dataset.h"
#include "dist/topology.h"
#include "tests/mpi/mpi_test.h"

namespace ocm::data {
namespace {

namespace fs = std::filesystem;

TEST(FolderConversion, TwoRanksWriteTheSameDatasetAsOne) {
  const auto& t = test::topology();
  long long owner = static_cast<long long>(getpid());
  MPI_Bcast(&owner, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  const fs::path root = fs::temp_directory_path() / ("ocm-folder-mpi-" + std::to_string(owner));
  if (t.rank == 0) {
    for (int c = 0; c < 3; ++c) {
      fs::create_directories(root / "src" / ("class" + std::to_string(c)));
      for (int i = 0; i < 5 + c; ++i) {
        std::vector<uint8_t> pixels(10 * 12 * 3);
        std::iota(pixels.begin(), pixels.end(), static_cast<uint8_t>(c * 40 + i));
        const std::string path =
            (root / "src" / ("class" + std::to_string(c)) / (std::to_string(i) + ".png")).string();
        ASSERT_EQ(stbi_write_png(path.c_str(), 10, 12, 3, pixels.data(), 30) != 0, true);
      }
    }
    convert_folder((root / "src").string(), (root / "single").string(), 4, ShardLayout{});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const ConversionGroup group{t.rank, t.world_size, dist::barrier, dist::gather_strings};
  convert_folder((root / "src").string(), (root / "parallel").string(), 4, ShardLayout{}, group);
  if (t.rank == 0) {
    EXPECT_EQ(verify_dataset((root / "parallel").string()), 18);
    const Dataset single((root / "single").string()), parallel((root / "parallel").string());
    EXPECT_GE(parallel.manifest().split("train", parallel.dir()).shards.size(),
              2u);  // one per rank
    std::vector<int64_t> all(18);
    std::iota(all.begin(), all.end(), 0);
    std::vector<uint8_t> a(18 * 48), b(18 * 48);
    std::vector<int64_t> la(18), lb(18);
    single.read("train", all, a.data(), la.data());
    parallel.read("train", all, b.data(), lb.data());
    EXPECT_EQ(a, b);
    EXPECT_EQ(la, lb);
    fs::remove_all(root);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace ocm::data
