#pragma once

#include <memory>

#include "dist/communicator.h"

namespace ocm::dist {

// NCCL over the ranks of MPI_COMM_WORLD, for CUDA tensors on `device` (this rank's GPU). Rank 0
// creates the NCCL unique id and MPI broadcasts it; without MPI (not built in, or not started)
// it is a world of one. A communicator whose collective is not done
// after `timeout_seconds`, or that reports an asynchronous error, is aborted and the job ended
// with a message. Only in builds with NCCL (OCM_HAVE_NCCL).
std::unique_ptr<Communicator> make_nccl_communicator(int device, double timeout_seconds);

}  // namespace ocm::dist
