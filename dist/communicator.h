#pragma once

#include <memory>
#include <vector>

#include <torch/types.h>

namespace ocm::dist {

// A pending collective; wait() completes it (and leaves the result in the tensor it was given).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

// Note [communicators]
// The trainer and the evaluator talk to other ranks only through this interface. The MPI
// communicator moves CPU tensors with MPI (averages on a communication thread, so the reducer
// overlaps them with backward); a single process gets a communicator of world size 1 whose
// collectives are no-ops. The NCCL communicator for CUDA tensors (dist/nccl_communicator.cpp)
// implements the same interface. Each communicator enforces its own deadline on every collective
// (Note [collective timeout]), so no caller arms a timer of its own: a wait(), broadcast() or
// barrier() that outlives it ends the job with kExitTimeout.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Starts an in-place sum over ranks of a contiguous float32 or float64 tensor. (A sum, not an
  // average: dividing by the world size costs a pass over memory that the caller can fold into
  // its next one; the gradient reducer scales while copying into .grad.)
  virtual std::unique_ptr<Work> sum_async(torch::Tensor tensor) = 0;
  // In-place broadcast of a contiguous tensor from `root`.
  virtual void broadcast(torch::Tensor tensor, int root) = 0;
  // Returns once every rank has called it.
  virtual void barrier() = 0;
};

// The deadline of a collective when the caller has no config to take dist.timeout_s from.
constexpr double kDefaultTimeoutSeconds = 600;

// MPI_COMM_WORLD when MPI is built in and initialised (init_processes), else world size 1.
std::unique_ptr<Communicator> make_cpu_communicator(
    double timeout_seconds = kDefaultTimeoutSeconds);

// World size 1 whatever launched the process: for work one rank does alone.
std::unique_ptr<Communicator> make_single_process_communicator();

// The communicator for tensors on `device`: MPI (or a single process) for the CPU, NCCL for
// CUDA, either aborting collectives that take longer than `timeout_seconds`. Throws UserError
// when the device's backend was not built in.
std::unique_ptr<Communicator> make_communicator(const torch::Device& device,
                                                double timeout_seconds);

// Rank 0's values in every rank's parameters (the start of data-parallel training).
void broadcast_parameters(const std::vector<torch::Tensor>& parameters, Communicator& communicator);

}  // namespace ocm::dist
