#pragma once

#include <mpi.h>
#include <unistd.h>

#include <string>

#include "dist/topology.h"
#include "tests/support/temp_dir.h"

namespace ocm::test {

// The topology of the MPI job the test binary runs in; see mpi_test_main.cpp.
const dist::Topology& topology();

// One TempDir that every rank of the job shares, named from rank 0's pid. Collective: rank 0
// makes it and every rank returns once it exists. Rank 0 removes it on destruction, so the ranks
// pass a barrier after their last use of it before it goes out of scope.
class SharedTempDir : public TempDir {
 public:
  explicit SharedTempDir(const std::string& prefix)
      : TempDir(prefix, rank_zero_pid(), topology().rank == 0) {
    MPI_Barrier(MPI_COMM_WORLD);
  }

 private:
  static long long rank_zero_pid() {
    long long pid = static_cast<long long>(::getpid());
    MPI_Bcast(&pid, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    return pid;
  }
};

}  // namespace ocm::test
