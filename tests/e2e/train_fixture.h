// The fixture of the `ocm train` end-to-end tests: a child process under its own process group,
// a small dataset and config, and helpers that run, wait for and compare training runs.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace ocm::test {

using Clock = std::chrono::steady_clock;

// A process started with a shell command line, in its own process group, output to a file.
class Child {
 public:
  Child(const std::string& command, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }
  void signal(int number) const { kill(pid_, number); }
  void kill_group() const { kill(-pid_, SIGKILL); }

  // The exit code (128 + signal when signalled), or -1 when it outlives `seconds` (then it is
  // killed).
  int wait(double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill_group();
    waitpid(pid_, nullptr, 0);
    reaped_ = true;
    return -1;
  }

  std::string output() const { return read_text(log_); }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_;
};

class TrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    data_dir_.emplace("ocm-train-test-data");
    data_ = data_dir_->join("data");
    data::Manifest header;
    header.kind = "arrays";
    header.element_shape = {1, 8, 8};
    header.dtype = "float32";
    header.source = "train_test";
    data::DatasetWriter writer(data_, header);
    RandomStream random(11);
    std::vector<float> values(48 * 64);
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<float>((i % 8) / 4.0 - 1.0 + 0.3 * random.uniform());
    writer.append("train", values.data(), nullptr, 48);
    writer.commit();
  }
  static void TearDownTestSuite() { data_dir_.reset(); }

  void SetUp() override {
    std::ofstream(files::join(dir_, "config.yaml")) << R"(
run: {seed: 5}
model: {kind: unet, ch: 8, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [4],
        dropout: 0.1, head: simple}
phases:
  score: {steps: 24, batch_size: 8, lr: 2e-3, warmup: 3, ema: 0.9}
  ocm: {steps: 8, batch_size: 8, micro_batch: 2, lr: 1e-3, ema: 0.8}
checkpoint: {every: 4, keep_last: 2, keep_every: 8}
log: {every: 1}
dist: {threads: 1}
)";
  }

  // `ocm train` of the test config into run directory `run`, with extra arguments.
  std::string train_command(const std::string& run, const std::string& extra = "",
                            int ranks = 0) const {
    const std::string ocm = std::string(OCM_BINARY) + " train " + files::join(dir_, "config.yaml") +
                            " --set data.path=" + data_ +
                            " --set run.dir=" + files::join(dir_, run) + " " + extra;
    if (ranks == 0)
      return ocm;
    return std::string(OCM_MPIEXEC) + " -np " + std::to_string(ranks) + " " + ocm;
  }

  int train(const std::string& run, const std::string& extra = "", int ranks = 0,
            std::string* output = nullptr) const {
    Child child(train_command(run, extra, ranks), files::join(dir_, run + ".log"));
    const int code = child.wait(120);
    if (output != nullptr)
      *output = child.output();
    return code;
  }

  std::string final_checkpoint(const std::string& run, int64_t step = 32) const {
    return checkpoints::checkpoint_path(files::join(dir_, run + "/checkpoints"), step);
  }

  // Both runs' final checkpoints hold the same tensors, bit for bit.
  void expect_identical_final_checkpoints(const std::string& a, const std::string& b,
                                          int64_t step = 32) const {
    const auto x = checkpoints::load_checkpoint(final_checkpoint(a, step));
    const auto y = checkpoints::load_checkpoint(final_checkpoint(b, step));
    ASSERT_EQ(x.tensors.size(), y.tensors.size());
    for (const auto& [name, tensor] : x.tensors) {
      ASSERT_EQ(y.tensors.count(name), 1u) << name;
      EXPECT_TRUE(torch::equal(tensor, y.tensors.at(name))) << name << " differs";
    }
  }

  // Waits until the run has logged a metrics line for global step `step` or later.
  bool wait_for_step(const std::string& run, int step, double seconds) const {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    const std::string path = files::join(dir_, run + "/metrics.jsonl");
    while (Clock::now() < deadline) {
      std::istringstream lines(read_text(path));
      for (std::string line; std::getline(lines, line);) {
        const auto at = line.find("\"step\":");
        if (at != std::string::npos && std::atoi(line.c_str() + at + 7) >= step)
          return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  inline static std::optional<test::TempDir> data_dir_;
  inline static std::string data_;
  test::TempDir tmp_{"ocm-train-test"};
  const std::string dir_ = tmp_.path();
};

}  // namespace ocm::test
