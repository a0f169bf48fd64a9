// main() for MPI test binaries, launched by ctest as `mpirun -np 2 <binary>`.
#include <mpi.h>

#include <gtest/gtest.h>

#include "tests/mpi/mpi_test.h"

namespace ocm::test {
namespace {
const dist::Topology* current = nullptr;
}

const dist::Topology& topology() {
  return *current;
}

}  // namespace ocm::test

int main(int argc, char** argv) {
  ocm::dist::ProcessSession session(&argc, &argv);
  ocm::test::current = &session.topology();
  ::testing::InitGoogleTest(&argc, argv);
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  // Every rank exits with the same code, so mpirun reports a failure on any rank.
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
