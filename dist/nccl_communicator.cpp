#include "dist/nccl_communicator.h"
#include "dist/watchdog.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/types.h>

#include "common/error.h"
#include "dist/topology.h"
#include "ocm/build_info.h"

#if OCM_HAVE_MPI
#include <mpi.h>
#endif

namespace ocm::dist {
namespace {

void check_cuda(cudaError_t code, const char* call) {
  if (code != cudaSuccess)
    throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorString(code));
}

void check_nccl(ncclResult_t code, const char* call) {
  if (code != ncclSuccess)
    throw std::runtime_error(std::string(call) + " failed: " + ncclGetErrorString(code));
}

ncclDataType_t nccl_type(const torch::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kInt64:
      return ncclInt64;
    case torch::kUInt8:
      return ncclUint8;
    default:
      throw std::logic_error("no NCCL type for this tensor dtype");
  }
}

// Note [NCCL streams]
// Collectives run on the communicator's own stream. Each one is ordered after the work already
// queued on the compute stream by an event, and the compute stream is ordered after the
// collective by another event when the caller waits (Work::wait), so neither the host nor the
// compute stream blocks inside a training step: the host only enqueues. The compute stream is
// the device's legacy default stream, the one LibTorch uses unless code selects another (ocm
// never does). A Work holds its tensor until waited on, so the caching allocator cannot hand
// the memory to other kernels while NCCL still reads it.
//
// Errors NCCL reports asynchronously, and collectives still running after the timeout, are
// caught by a monitor thread that polls ncclCommGetAsyncError and the oldest pending
// collective's event; it aborts the NCCL communicator (releasing the kernels that wait on other
// ranks) and then the whole job, with a message naming what failed.
class Nccl : public Communicator {
 public:
  Nccl(int device, double timeout_seconds)
      : device_(device), timeout_(timeout_seconds), barrier_watchdog_(timeout_seconds) {
#if OCM_HAVE_MPI
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
      MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
      MPI_Comm_size(MPI_COMM_WORLD, &world_);
    }
#endif
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id;
    if (rank_ == 0)
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
#if OCM_HAVE_MPI
    if (world_ > 1 && MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Bcast of the NCCL unique id failed");
#endif
    check_nccl(ncclCommInitRank(&comm_, world_, id, rank_), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    monitor_ = std::thread([this] { monitor(); });
  }

  ~Nccl() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    monitor_.join();
    if (!aborted_)
      ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override {
    return rank_;
  }
  int world_size() const override {
    return world_;
  }

  std::unique_ptr<Work> sum_async(torch::Tensor tensor) override {
    check_tensor(tensor);
    auto work = enqueue(tensor, [&](void* data) {
      return ncclAllReduce(data, data, static_cast<size_t>(tensor.numel()), nccl_type(tensor),
                           ncclSum, comm_, stream_);
    });
    return work;
  }

  void broadcast(torch::Tensor tensor, int root) override {
    check_tensor(tensor);
    enqueue(tensor, [&](void* data) {
      return ncclBroadcast(data, data, static_cast<size_t>(tensor.numel()), nccl_type(tensor), root,
                           comm_, stream_);
    })->wait();
  }

  void barrier() override {
    // The MPI barrier is not an NCCL collective, so the monitor does not see it.
    auto armed = barrier_watchdog_.arm("a barrier");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
#if OCM_HAVE_MPI
    if (world_ > 1 && MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Barrier failed");
#endif
  }

 private:
  // Shared by a Work and the monitor, which may outlive each other.
  using Event = std::shared_ptr<CUevent_st>;

  class Pending : public Work {
   public:
    Pending(torch::Tensor tensor, Event done)
        : tensor_(std::move(tensor)), done_(std::move(done)) {}
    void wait() override {
      // Orders the compute stream after the collective; the host does not block.
      check_cuda(cudaStreamWaitEvent(nullptr, done_.get(), 0), "cudaStreamWaitEvent");
      tensor_ = torch::Tensor();
    }

   private:
    torch::Tensor tensor_;
    Event done_;
  };

  void check_tensor(const torch::Tensor& tensor) const {
    if (!tensor.is_cuda() || tensor.get_device() != device_ || !tensor.is_contiguous())
      throw std::logic_error("the NCCL communicator takes contiguous tensors on its own GPU");
  }

  template <class Launch>
  std::unique_ptr<Work> enqueue(const torch::Tensor& tensor, Launch launch) {
    cudaEvent_t ready = nullptr, raw_done = nullptr;
    check_cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventCreateWithFlags(&raw_done, cudaEventDisableTiming), "cudaEventCreate");
    const Event done(raw_done, [](cudaEvent_t event) { cudaEventDestroy(event); });
    check_cuda(cudaEventRecord(ready, nullptr), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream_, ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(ready);  // released once the stream has passed it
    check_nccl(launch(tensor.data_ptr()), "NCCL collective");
    check_cuda(cudaEventRecord(done.get(), stream_), "cudaEventRecord");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_.push_back({done, std::chrono::steady_clock::now()});
    }
    changed_.notify_all();
    return std::make_unique<Pending>(tensor, done);
  }

  void fail(const std::string& what) {
    spdlog::critical(
        "rank {}: {}. Aborting the NCCL communicator and the job; rerun the same "
        "command to resume from the last checkpoint.",
        rank_, what);
    spdlog::default_logger()->flush();
    aborted_ = true;
    ncclCommAbort(comm_);
    abort_processes(kExitTimeout);
    _exit(kExitTimeout);
  }

  void monitor() {
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      changed_.wait_for(lock, std::chrono::milliseconds(50));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess)
        fail(std::string("NCCL reported an error: ") + ncclGetErrorString(async));
      while (!in_flight_.empty()) {
        const Flight& oldest = in_flight_.front();
        const cudaError_t state = cudaEventQuery(oldest.done.get());
        if (state == cudaSuccess) {
          in_flight_.pop_front();
          continue;
        }
        if (state != cudaErrorNotReady)
          fail(std::string("a collective failed: ") + cudaGetErrorString(state));
        if (std::chrono::steady_clock::now() - oldest.started > timeout_) {
          fail("an NCCL collective did not complete within " +
               std::to_string(static_cast<int>(timeout_.count())) +
               " s (dist.timeout_s): another rank has stalled or died");
        }
        break;
      }
    }
  }

  struct Flight {
    Event done;
    std::chrono::steady_clock::time_point started;
  };

  int device_;
  std::chrono::duration<double> timeout_;
  Watchdog barrier_watchdog_;
  int rank_ = 0;
  int world_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Flight> in_flight_;
  bool stopping_ = false;
  std::atomic<bool> aborted_{false};
  std::thread monitor_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(int device, double timeout_seconds) {
  return std::make_unique<Nccl>(device, timeout_seconds);
}

}  // namespace ocm::dist
