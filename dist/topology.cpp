#include "dist/topology.h"

#include "common/error.h"
#include "ocm/build_info.h"

#if OCM_HAVE_MPI
#include <mpi.h>
#endif
#if OCM_HAVE_NCCL
#include <nccl.h>
#endif

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace ocm::dist {

#if OCM_HAVE_MPI
namespace {

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS)
    return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(call) + " failed: " + std::string(text, length));
}

// srun without an MPI plugin starts every task as an MPI singleton: N copies of rank 0 that
// would each write the same run directory. Caught here, before any of them does.
void check_against_slurm(const Topology& topology) {
  const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (tasks == nullptr || std::getenv("SLURM_STEP_ID") == nullptr ||
      std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr)
    return;  // not a task of an srun step, or started by mpirun
  const int expected = std::atoi(tasks);
  if (expected > 1 && topology.world_size != expected) {
    throw UserError("srun",
                    "started " + std::string(tasks) + " tasks, but MPI sees " +
                        std::to_string(topology.world_size) + " rank(s)",
                    "one MPI job of " + std::string(tasks) + " ranks",
                    "Launch with `srun --mpi=pmix` (see `srun --mpi=list`) or use mpirun inside "
                    "the allocation.");
  }
}

}  // namespace

ProcessSession::ProcessSession(int* argc, char*** argv) {
  int provided = 0;
  // MULTIPLE lets the communication thread run collectives beside the main thread; see Note
  // [communication thread] in communicator.cpp. A library that offers less still works.
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &topology_.rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &topology_.world_size), "MPI_Comm_size");
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, topology_.rank, MPI_INFO_NULL,
                                &node),
            "MPI_Comm_split_type");
  check_mpi(MPI_Comm_rank(node, &topology_.local_rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(node, &topology_.local_size), "MPI_Comm_size");
  MPI_Comm_free(&node);
  check_against_slurm(topology_);
}

ProcessSession::~ProcessSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

const Topology& init_processes() {
  static ProcessSession session(nullptr, nullptr);
  return session.topology();
}

void abort_processes(int exit_code) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    return;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1)
    MPI_Abort(MPI_COMM_WORLD, exit_code);
}

void barrier() {
  check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void allreduce_sum_blocking(float* data, int64_t count) {
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                          MPI_COMM_WORLD),
            "MPI_Allreduce");
}

std::vector<std::string> gather_strings(const std::string& mine) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int length = static_cast<int>(mine.size());
  std::vector<int> lengths(rank == 0 ? size : 0);
  check_mpi(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD),
            "MPI_Gather");
  std::vector<int> offsets(lengths.size());
  int total = 0;
  for (size_t r = 0; r < lengths.size(); ++r) {
    offsets[r] = total;
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(total), '\0');
  check_mpi(MPI_Gatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(),
                        MPI_CHAR, 0, MPI_COMM_WORLD),
            "MPI_Gatherv");
  std::vector<std::string> out;
  for (size_t r = 0; r < lengths.size(); ++r)
    out.push_back(all.substr(offsets[r], lengths[r]));
  return out;
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, length);
  return version.substr(0, version.find_first_of(",\n"));
}
#else
ProcessSession::ProcessSession(int*, char***) {}
ProcessSession::~ProcessSession() = default;
const Topology& init_processes() {
  static const Topology single;
  return single;
}
void abort_processes(int) {}
void barrier() {}
void allreduce_sum_blocking(float*, int64_t) {}
std::vector<std::string> gather_strings(const std::string& mine) {
  return {mine};
}
std::string mpi_library_version() {
  return "not built";
}
#endif

int compute_threads(int64_t configured, const Topology& topology) {
  if (configured > 0)
    return static_cast<int>(configured);
  cpu_set_t mask;
  CPU_ZERO(&mask);
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0)
    cores = CPU_COUNT(&mask);
  // A rank bound to its own cores sees only those; an unbound rank sees the whole node and
  // shares it with the node's other ranks.
  const int node_cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores >= node_cores && topology.local_size > 1)
    cores /= topology.local_size;
  return std::max(1, cores);
}

std::string nccl_version() {
#if OCM_HAVE_NCCL
  return std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
         std::to_string(NCCL_PATCH);
#else
  return "not built";
#endif
}

}  // namespace ocm::dist
