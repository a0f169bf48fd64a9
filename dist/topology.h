#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ocm::dist {

// Where this process sits among the ranks of the job.
struct Topology {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // index among the ranks on this node
  int local_size = 1;
};

// Note [process bootstrap]
// MPI is the bootstrap for every multi-process run: it gives ranks, the node-local rank (from a
// shared-memory split, so it is right under mpirun and srun alike), and later carries the NCCL
// unique id. A binary built without MPI is a single process. The session is a scoped object in
// main(): MPI is finalised on every exit path that unwinds.
class ProcessSession {
 public:
  ProcessSession(int* argc, char*** argv);
  ~ProcessSession();
  ProcessSession(const ProcessSession&) = delete;
  ProcessSession& operator=(const ProcessSession&) = delete;

  const Topology& topology() const { return topology_; }

 private:
  Topology topology_;
};

// For commands that may run under mpirun: starts MPI once per process (later calls return the
// same topology) and finalises it at exit. Without MPI, a single process.
const Topology& init_processes();

// After an error on this rank: ends every rank of a multi-process job (MPI_Abort), so no rank
// waits forever in a collective. Returns in a single process.
void abort_processes(int exit_code);

// Compute threads for one rank: `configured` when positive, else the cores this process may run
// on (its affinity mask, which mpirun/srun binding narrows) divided among the ranks of its node
// that share them, at least 1.
int compute_threads(int64_t configured, const Topology& topology);

// Blocks until every rank has arrived.
void barrier();

// Blocking in-place sum over ranks of a float buffer: the raw MPI baseline the benchmarks
// compare the communicator against.
void allreduce_sum_blocking(float* data, int64_t count);

// Every rank's string, in rank order, on rank 0; an empty list elsewhere.
std::vector<std::string> gather_strings(const std::string& mine);

// "Open MPI v4.1.4, …" (first line of the library's own version string), or "not built".
std::string mpi_library_version();

// "2.28.3" from the NCCL headers built against, or "not built".
std::string nccl_version();

}  // namespace ocm::dist
