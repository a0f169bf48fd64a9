#include "dist/topology.h"

#include "ocm/build_info.h"

#if OCM_HAVE_MPI
#include <mpi.h>
#endif
#if OCM_HAVE_NCCL
#include <nccl.h>
#endif

#include <stdexcept>

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

}  // namespace

ProcessSession::ProcessSession(int* argc, char*** argv) {
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &topology_.rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &topology_.world_size), "MPI_Comm_size");
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, topology_.rank, MPI_INFO_NULL,
                                &node),
            "MPI_Comm_split_type");
  check_mpi(MPI_Comm_rank(node, &topology_.local_rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(node, &topology_.local_size), "MPI_Comm_size");
  MPI_Comm_free(&node);
}

ProcessSession::~ProcessSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
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
std::string mpi_library_version() {
  return "not built";
}
#endif

std::string nccl_version() {
#if OCM_HAVE_NCCL
  return std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
         std::to_string(NCCL_PATCH);
#else
  return "not built";
#endif
}

}  // namespace ocm::dist
