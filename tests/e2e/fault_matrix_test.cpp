// Faults of a whole 2-rank job, as a cluster produces them: a rank killed, a rank stopped, the
// disk filling up or turning read-only under a checkpoint, a dataset shard deleted, a burst of
// NaNs. Each must end the job within its timeout with a message that says what happened, leave
// the newest complete checkpoint intact, and let the same command resume to the same weights as
// an uninterrupted run. Each case prints one FAULT line: seconds from the fault to the end of
// the job, and the steps trained since the checkpoint it resumes from (the work lost).
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>

#include "tests/e2e/train_fixture.h"

namespace ocm {
namespace {

using test::Child;
using test::TrainTest;
using Clock = std::chrono::steady_clock;

// The pid of `rank`'s process among the children of mpirun `parent`; -1 when there is none.
pid_t pid_of_rank(pid_t parent, int rank) {
  const std::string wanted = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& entry : files::list_directory("/proc")) {
    const pid_t pid = std::atoi(entry.name.c_str());
    if (pid <= 0)
      continue;
    std::istringstream stat(test::read_text("/proc/" + entry.name + "/stat"));
    std::string pid_text, name, state;
    pid_t ppid = 0;
    stat >> pid_text >> name >> state >> ppid;
    if (ppid != parent)
      continue;
    std::string environment = test::read_text("/proc/" + entry.name + "/environ");
    for (char& c : environment)
      c = c == '\0' ? '\n' : c;
    if (("\n" + environment).find("\n" + wanted + "\n") != std::string::npos)
      return pid;
  }
  return -1;
}

// A small tmpfs mounted for the life of the object (root only; otherwise valid() is false).
class Tmpfs {
 public:
  Tmpfs(const std::string& path, const std::string& size) : path_(path), size_(size) {
    files::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    error_ = mounted_ ? "" : std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_)
      ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool valid() const { return mounted_; }
  const std::string& error() const { return error_; }
  // A file open for writing makes the kernel refuse (EBUSY): the checkpoint writer holds one
  // only while it writes, so this tries again for up to 10 s.
  bool set_read_only(bool read_only) const {
    const unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
    for (int attempt = 0; attempt < 1000; ++attempt) {
      if (::mount("tmpfs", path_.c_str(), "tmpfs", flags, ("size=" + size_).c_str()) == 0)
        return true;
      if (errno != EBUSY)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  std::string path_, size_, error_;
  bool mounted_ = false;
};

class FaultMatrix : public TrainTest {
 protected:
  const std::string settings_ = "--set phases.score.steps=48 --set dist.timeout_s=5";

  void SetUp() override {
    TrainTest::SetUp();
    ASSERT_EQ(train("straight", settings_, 2), 0);
  }

  // Waits for step `step` of a 2-rank run of `run`, applies `fault`, waits for the job to end
  // and checks how: exit code `code` (any non-zero when -1) and `message` in the output.
  // Returns the newest valid checkpoint's step.
  int64_t fault_at(const std::string& run, int step, const std::function<void(pid_t)>& fault,
                   int code, const std::string& message, const std::string& what) {
    Child child(train_command(run, settings_, 2), files::join(dir_, run + ".log"));
    EXPECT_TRUE(wait_for_step(run, step, 60)) << child.output();
    const auto start = Clock::now();
    fault(child.pid());
    const int exit_code = child.wait(60);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_NE(exit_code, -1) << "the job outlived the fault by 60 s:\n" << child.output();
    if (code >= 0)
      EXPECT_EQ(exit_code, code) << child.output();
    else
      EXPECT_NE(exit_code, 0) << child.output();
    EXPECT_NE(child.output().find(message), std::string::npos) << child.output();
    const auto newest = checkpoints::load_newest_valid(files::join(dir_, run + "/checkpoints"));
    EXPECT_TRUE(newest.has_value()) << child.output();
    const int64_t kept = newest ? newest->checkpoint.step : 0;
    std::cout << "FAULT " << what << ": ended " << seconds << " s after the fault, exit "
              << exit_code << ", resumes from step " << kept << ", " << (step - kept)
              << " or more steps lost" << std::endl;
    return kept;
  }

  // The same command resumes and ends where the uninterrupted run did.
  void expect_resumes(const std::string& run) {
    std::string output;
    ASSERT_EQ(train(run, settings_, 2, &output), 0) << output;
    EXPECT_NE(output.find("resuming from"), std::string::npos) << output;
    expect_identical_final_checkpoints("straight", run, 56);
  }
};

TEST_F(FaultMatrix, KillNineOfANonZeroRank) {
  fault_at(
      "run", 10, [](pid_t mpirun) { ASSERT_EQ(::kill(pid_of_rank(mpirun, 1), SIGKILL), 0); }, -1,
      "exited on signal 9", "kill -9 of rank 1");
  expect_resumes("run");
}

TEST_F(FaultMatrix, StoppedRankPastTheTimeout) {
  fault_at(
      "run", 10, [](pid_t mpirun) { ASSERT_EQ(::kill(pid_of_rank(mpirun, 1), SIGSTOP), 0); }, 4,
      "did not complete within 5 s", "SIGSTOP of rank 1 (dist.timeout_s 5)");
  expect_resumes("run");
}

// The checkpoint directory is a small tmpfs of its own, so that what fails is a checkpoint's
// write (metrics.jsonl beside it is on the ordinary disk).
TEST_F(FaultMatrix, DiskFullUnderACheckpoint) {
  const Tmpfs disk(files::join(dir_, "run/checkpoints"), "32m");
  if (!disk.valid())
    GTEST_SKIP() << "mounting a tmpfs failed (" << disk.error() << "); this case needs root";
  const std::string ballast = files::join(dir_, "run/checkpoints/ballast");
  fault_at(
      "run", 10,
      [&](pid_t) {
        std::ofstream fill(ballast, std::ios::binary);
        const std::string block(1 << 16, 'x');
        while (fill.write(block.data(), static_cast<std::streamsize>(block.size())))
          ;
      },
      -1, "No space left on device", "disk full (32 MB tmpfs filled)");
  ::unlink(ballast.c_str());
  expect_resumes("run");
}

TEST_F(FaultMatrix, CheckpointDirectoryTurnsReadOnly) {
  const Tmpfs disk(files::join(dir_, "run/checkpoints"), "16m");
  if (!disk.valid())
    GTEST_SKIP() << "mounting a tmpfs failed (" << disk.error() << "); this case needs root";
  fault_at(
      "run", 10, [&](pid_t) { ASSERT_TRUE(disk.set_read_only(true)); }, -1, "Read-only file system",
      "checkpoint directory remounted read-only");
  ASSERT_TRUE(disk.set_read_only(false));
  expect_resumes("run");
}

// Shards are opened once and kept open, so the running job reads a deleted shard to the end as
// POSIX keeps its bytes; the next start names it before training, and resumes once it is back.
TEST_F(FaultMatrix, DatasetShardDeleted) {
  const std::string data = files::join(dir_, "data");
  ASSERT_EQ(test::run_command("cp -r '" + data_ + "' '" + data + "'").exit_code, 0);
  const std::string shard = files::join(data, "shard-00000.h5");
  const std::string command = " --set data.path=" + data;
  Child child(train_command("run", settings_ + command, 2), files::join(dir_, "run.log"));
  ASSERT_TRUE(wait_for_step("run", 10, 60)) << child.output();
  ASSERT_EQ(::rename(shard.c_str(), (shard + ".away").c_str()), 0);
  child.signal(SIGUSR1);  // mpirun passes it on to every rank
  ASSERT_EQ(child.wait(60), 3) << child.output();
  std::string output;
  EXPECT_EQ(train("run", settings_ + command, 2, &output), 2) << output;
  EXPECT_NE(output.find("shard-00000.h5"), std::string::npos) << output;
  const auto kept = checkpoints::load_newest_valid(files::join(dir_, "run/checkpoints"));
  ASSERT_TRUE(kept.has_value());
  std::cout << "FAULT shard deleted: the next start exits 2 naming it; resumes from step "
            << kept->checkpoint.step << std::endl;
  ASSERT_EQ(::rename((shard + ".away").c_str(), shard.c_str()), 0);
  ASSERT_EQ(train("run", settings_ + command, 2, &output), 0) << output;
  expect_identical_final_checkpoints("straight", "run", 56);
}

TEST_F(FaultMatrix, NanBurstPastTheLimit) {
  setenv("OCM_FAULT", "nan:1:10", 1);
  const auto start = Clock::now();
  std::string output;
  EXPECT_EQ(train("run", settings_ + " --set run.max_bad_steps=1", 2, &output), 5) << output;
  unsetenv("OCM_FAULT");
  EXPECT_NE(output.find("training has diverged"), std::string::npos) << output;
  const auto kept = checkpoints::load_newest_valid(files::join(dir_, "run/checkpoints"));
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->checkpoint.step, 8);
  std::cout << "FAULT NaN at step 10 with max_bad_steps 1: exit 5, "
            << std::chrono::duration<double>(Clock::now() - start).count()
            << " s for the whole run; resumes from step 8" << std::endl;
  expect_resumes("run");
}

}  // namespace
}  // namespace ocm
