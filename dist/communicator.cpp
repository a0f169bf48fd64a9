#include "dist/communicator.h"

#include <torch/torch.h>

#include "common/error.h"
#include "dist/watchdog.h"
#include "ocm/build_info.h"

#if OCM_HAVE_NCCL
#include "dist/nccl_communicator.h"
#endif

#if OCM_HAVE_MPI
#include <mpi.h>
#endif

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

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
  std::unique_ptr<Work> sum_async(torch::Tensor) override { return std::make_unique<DoneWork>(); }
  void broadcast(torch::Tensor, int) override {}
  void barrier() override {}
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

void sum_in_place(const torch::Tensor& tensor, MPI_Comm comm) {
  if (MPI_Allreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()),
                    mpi_type(tensor), MPI_SUM, comm) != MPI_SUCCESS) {
    throw std::runtime_error("MPI_Allreduce failed");
  }
}

class FutureWork : public Work {
 public:
  FutureWork(std::future<void> done, Watchdog& watchdog, int64_t count)
      : done_(std::move(done)), watchdog_(watchdog), count_(count) {}
  void wait() override {
    auto armed = watchdog_.arm("an all-reduce of " + std::to_string(count_) + " values");
    done_.get();
  }

 private:
  std::future<void> done_;
  Watchdog& watchdog_;
  int64_t count_;
};

// Note [communication thread]
// Open MPI 4.1's non-blocking all-reduce reached only 0.3-0.5 of the blocking one's bandwidth
// on our machines (`ocm bench allreduce`), so sums run as blocking MPI_Allreduce calls on a
// thread of their own, in the order they were requested (the same order on every rank, since
// backward produces gradients in the same order). That keeps the overlap with backward and gets
// the tuned algorithms. The thread uses a duplicate of MPI_COMM_WORLD, so its collectives never
// interleave with the main thread's, which MPI_THREAD_MULTIPLE allows to run at the same time.
// Without MPI_THREAD_MULTIPLE the sum runs at once on the calling thread.
class Mpi : public Communicator {
 public:
  explicit Mpi(double timeout_seconds) : watchdog_(timeout_seconds) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level == MPI_THREAD_MULTIPLE && world_ > 1) {
      MPI_Comm_dup(MPI_COMM_WORLD, &reduce_comm_);
      worker_ = std::thread([this] { work(); });
    }
  }
  ~Mpi() override {
    if (!worker_.joinable())
      return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    worker_.join();
    MPI_Comm_free(&reduce_comm_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::unique_ptr<Work> sum_async(torch::Tensor tensor) override {
    check_tensor(tensor);
    if (!tensor.is_floating_point())
      throw std::logic_error("summing needs a floating-point tensor");
    const int64_t count = tensor.numel();
    std::promise<void> promise;
    std::future<void> done = promise.get_future();
    if (!worker_.joinable()) {
      auto armed = watchdog_.arm("an all-reduce of " + std::to_string(count) + " values");
      sum_in_place(tensor, MPI_COMM_WORLD);
      promise.set_value();
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({std::move(tensor), std::move(promise)});
    }
    changed_.notify_all();
    return std::make_unique<FutureWork>(std::move(done), watchdog_, count);
  }
  void broadcast(torch::Tensor tensor, int root) override {
    check_tensor(tensor);
    auto armed = watchdog_.arm("a broadcast from rank " + std::to_string(root));
    if (MPI_Bcast(tensor.data_ptr(), static_cast<int>(tensor.numel()), mpi_type(tensor), root,
                  MPI_COMM_WORLD) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Bcast failed");
    }
  }
  void barrier() override {
    auto armed = watchdog_.arm("a barrier");
    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Barrier failed");
  }

 private:
  struct Job {
    torch::Tensor tensor;
    std::promise<void> done;
  };

  void work() {
    while (true) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty())
          return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        sum_in_place(job.tensor, reduce_comm_);
        job.done.set_value();
      } catch (...) {
        job.done.set_exception(std::current_exception());
      }
    }
  }

  Watchdog watchdog_;
  int rank_ = 0;
  int world_ = 1;
  MPI_Comm reduce_comm_ = MPI_COMM_NULL;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread worker_;
};
#endif

}  // namespace

std::unique_ptr<Communicator> make_cpu_communicator(double timeout_seconds) {
#if OCM_HAVE_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    return std::make_unique<Mpi>(timeout_seconds);
#else
  (void)timeout_seconds;
#endif
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Communicator> make_communicator(const torch::Device& device,
                                                double timeout_seconds) {
  if (device.is_cpu())
    return make_cpu_communicator(timeout_seconds);
#if OCM_HAVE_NCCL
  return make_nccl_communicator(device.index(), timeout_seconds);
#else
  (void)timeout_seconds;
  throw UserError("dist.device", "is " + device.str() + ", but this build has no NCCL communicator",
                  "cpu, or a build with CUDA and NCCL (see docs/cluster.md)");
#endif
}

void broadcast_parameters(const std::vector<torch::Tensor>& parameters,
                          Communicator& communicator) {
  if (communicator.world_size() == 1)
    return;
  torch::NoGradGuard no_grad;
  for (const auto& parameter : parameters) {
    torch::Tensor buffer = parameter.detach().contiguous();
    communicator.broadcast(buffer, 0);
    if (!buffer.is_same(parameter))
      parameter.detach().copy_(buffer);
  }
}

}  // namespace ocm::dist
