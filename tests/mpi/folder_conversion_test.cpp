// Two ranks convert one image folder together; the result equals a one-process conversion.
#include <mpi.h>
#include <stb/stb_image_write.h>

#include <fstream>
#include <numeric>

#include <gtest/gtest.h>

#include "common/files.h"
#include "data/converters.h"
#include "data/dataset.h"
#include "dist/topology.h"
#include "tests/mpi/mpi_test.h"

namespace ocm::data {
namespace {

TEST(FolderConversion, TwoRanksWriteTheSameDatasetAsOne) {
  const auto& t = test::topology();
  const test::SharedTempDir tmp("ocm-folder-mpi");
  const std::string root = tmp.path();
  if (t.rank == 0) {
    for (int c = 0; c < 3; ++c) {
      files::create_directories(files::join(root, "src/class" + std::to_string(c)));
      for (int i = 0; i < 5 + c; ++i) {
        std::vector<uint8_t> pixels(10 * 12 * 3);
        std::iota(pixels.begin(), pixels.end(), static_cast<uint8_t>(c * 40 + i));
        const std::string path =
            files::join(root, "src/class" + std::to_string(c) + "/" + std::to_string(i) + ".png");
        ASSERT_EQ(stbi_write_png(path.c_str(), 10, 12, 3, pixels.data(), 30) != 0, true);
      }
    }
    convert_folder(files::join(root, "src"), files::join(root, "single"), 4, ShardLayout{});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const ConversionGroup group{t.rank, t.world_size, dist::barrier, dist::gather_strings};
  convert_folder(files::join(root, "src"), files::join(root, "parallel"), 4, ShardLayout{}, group);
  if (t.rank == 0) {
    EXPECT_EQ(verify_dataset(files::join(root, "parallel")), 18);
    const Dataset single(files::join(root, "single")), parallel(files::join(root, "parallel"));
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
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace ocm::data
