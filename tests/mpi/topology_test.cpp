#include <mpi.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "common/log.h"
#include "tests/mpi/mpi_test.h"

namespace ocm {
namespace {

TEST(Topology, RanksAreDistinctAndLocalRanksComeFromTheNode) {
  const auto& t = test::topology();
  ASSERT_EQ(t.world_size, 2);
  int rank_sum = 0;
  MPI_Allreduce(&t.rank, &rank_sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(rank_sum, 0 + 1);
  // Both ranks run on this one machine.
  EXPECT_EQ(t.local_size, 2);
  EXPECT_EQ(t.local_rank, t.rank);
}

TEST(Topology, EveryRankWritesItsOwnLogFile) {
  const auto& t = test::topology();
  const test::SharedTempDir tmp("ocm-mpi-log");
  const std::filesystem::path dir = tmp.join("logs");
  init_logging({"info", t.rank, dir.string()});
  spdlog::info("hello from rank {}", t.rank);
  spdlog::default_logger()->flush();
  MPI_Barrier(MPI_COMM_WORLD);
  if (t.rank == 0) {
    for (int r = 0; r < t.world_size; ++r) {
      std::ifstream in(dir / ("rank-" + std::to_string(r) + ".log"));
      std::stringstream text;
      text << in.rdbuf();
      EXPECT_NE(
          text.str().find("[rank " + std::to_string(r) + "] hello from rank " + std::to_string(r)),
          std::string::npos)
          << text.str();
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  spdlog::shutdown();
}

}  // namespace
}  // namespace ocm
