#include "dist/communicator.h"

#include <torch/torch.h>

#include "ocm/build_info.h"

#if OCM_HAVE_MPI
#include <mpi.h>
#endif

#include <stdexcept>
#include <string>

namespace ocm::dist {
namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
};

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::unique_ptr<Work> average_async(torch::Tensor) override {
    return std::make_unique<DoneWork>();
  }
  void broadcast(torch::Tensor, int) override {}
};

#if OCM_HAVE_MPI
MPI_Datatype mpi_type(const torch::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kUInt8:
      return MPI_UINT8_T;
    default:
      throw std::logic_error("no MPI type for this tensor dtype");
  }
}

void check_tensor(const torch::Tensor& tensor) {
  if (!tensor.device().is_cpu() || !tensor.is_contiguous()) {
    throw std::logic_error("the MPI communicator takes contiguous CPU tensors");
  }
}

class MpiWork : public Work {
 public:
  MpiWork(torch::Tensor tensor, MPI_Request request, int world)
      : tensor_(std::move(tensor)), request_(request), world_(world) {}
  void wait() override {
    if (request_ == MPI_REQUEST_NULL)
      return;
    if (MPI_Wait(&request_, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Wait failed");
    tensor_.div_(world_);
  }

 private:
  torch::Tensor tensor_;  // kept alive until the collective completes
  MPI_Request request_;
  int world_;
};

class Mpi : public Communicator {
 public:
  Mpi() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::unique_ptr<Work> average_async(torch::Tensor tensor) override {
    check_tensor(tensor);
    if (!tensor.is_floating_point())
      throw std::logic_error("averaging needs a floating-point tensor");
    MPI_Request request = MPI_REQUEST_NULL;
    if (MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()),
                       mpi_type(tensor), MPI_SUM, MPI_COMM_WORLD, &request) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Iallreduce failed");
    }
    return std::make_unique<MpiWork>(std::move(tensor), request, world_);
  }
  void broadcast(torch::Tensor tensor, int root) override {
    check_tensor(tensor);
    if (MPI_Bcast(tensor.data_ptr(), static_cast<int>(tensor.numel()), mpi_type(tensor), root,
                  MPI_COMM_WORLD) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Bcast failed");
    }
  }

 private:
  int rank_ = 0;
  int world_ = 1;
};
#endif

}  // namespace

std::unique_ptr<Communicator> make_cpu_communicator() {
#if OCM_HAVE_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    return std::make_unique<Mpi>();
#endif
  return std::make_unique<SingleProcess>();
}

void broadcast_parameters(const std::vector<torch::Tensor>& parameters,
                          Communicator& communicator) {
  if (communicator.world_size() == 1)
    return;
  torch::NoGradGuard no_grad;
  for (const auto& parameter : parameters) {
    torch::Tensor buffer = parameter.detach().cpu().contiguous();
    communicator.broadcast(buffer, 0);
    parameter.detach().copy_(buffer);
  }
}

}  // namespace ocm::dist
