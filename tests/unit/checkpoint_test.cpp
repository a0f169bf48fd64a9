#include "checkpoints/checkpoint.h"

#include "checkpoints/background_writer.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::checkpoints {
namespace {

// A checkpoint of `step` whose tensors follow from the step.
Checkpoint make(int64_t step) {
  torch::manual_seed(step);
  Checkpoint c;
  c.step = step;
  c.phase = step < 5 ? "score" : "ocm";
  c.config_hash = "abc123";
  c.world_size = 2;
  c.tensors["model/conv_in.weight"] = torch::randn({4, 3, 3, 3});
  c.tensors["ema/conv_in.weight"] = torch::randn({4, 3, 3, 3}, torch::kFloat64);
  c.tensors["optimizer/step"] = torch::tensor(step);
  c.tensors["optimizer/flags"] = torch::randint(0, 255, {7}, torch::kUInt8);
  return c;
}

class CheckpointTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"ocm-checkpoint-test"};
  const std::string dir_ = tmp_.join("checkpoints");  // not made: saving makes it
};

TEST_F(CheckpointTest, RoundTripIsBitwiseAndLatestNamesIt) {
  const Checkpoint saved = make(3);
  const std::string path = save_checkpoint(dir_, saved, {});
  const Checkpoint loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.step, 3);
  EXPECT_EQ(loaded.phase, "score");
  EXPECT_EQ(loaded.config_hash, "abc123");
  EXPECT_EQ(loaded.world_size, 2);
  ASSERT_EQ(loaded.tensors.size(), saved.tensors.size());
  for (const auto& [name, tensor] : saved.tensors) {
    ASSERT_TRUE(loaded.tensors.count(name)) << name;
    EXPECT_EQ(loaded.tensors.at(name).scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(loaded.tensors.at(name), tensor)) << name;
  }
  std::ifstream latest(files::join(dir_, "latest"));
  std::string named;
  latest >> named;
  EXPECT_EQ(files::join(dir_, named), path);
}

TEST_F(CheckpointTest, RetentionKeepsTheLastNEveryMthAndTheNamedSteps) {
  for (int64_t step = 1; step <= 10; ++step)
    save_checkpoint(dir_, make(step), {3, 4, {6}});
  std::vector<std::string> kept;
  for (const auto& entry : files::list_directory(dir_)) {
    if (files::extension(entry.name) == ".h5")
      kept.push_back(entry.name);
  }
  EXPECT_EQ(kept, (std::vector<std::string>{"ckpt-0000000004.h5", "ckpt-0000000006.h5",
                                            "ckpt-0000000008.h5", "ckpt-0000000009.h5",
                                            "ckpt-0000000010.h5"}));
}

TEST_F(CheckpointTest, DamagedOrUnmanifestedNewestFallsBackToThePreviousValidOne) {
  save_checkpoint(dir_, make(1), {5, 0, {}});
  const std::string second = save_checkpoint(dir_, make(2), {5, 0, {}});
  const std::string third = save_checkpoint(dir_, make(3), {5, 0, {}});
  {
    std::fstream file(third, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(files::file_size(third) - 20);
    file.put('\x7f');
  }
  auto found = load_newest_valid(dir_);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->path, second);
  EXPECT_EQ(found->checkpoint.step, 2);
  test::expect_user_error([&] { load_checkpoint(third); }, {"sha256"});
  // A crash after the HDF5 rename but before the manifest: the file is never taken.
  ::unlink(files::join(dir_, "ckpt-0000000002.json").c_str());
  found = load_newest_valid(dir_);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->checkpoint.step, 1);
  EXPECT_THROW(load_checkpoint(second), UserError);
  files::remove_tree(dir_);
  EXPECT_FALSE(load_newest_valid(dir_).has_value());
}

// Note [asynchronous checkpoints]: the file holds the state as it was when save() returned, even
// though training changes the tensors in place while the write is still to come.
TEST_F(CheckpointTest, BackgroundWriteHoldsTheStateAsItWasWhenSaveReturned) {
  Checkpoint live = make(3);
  const Checkpoint then = make(3);
  BackgroundWriter writer;
  writer.save(dir_, live, {}, [] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); });
  EXPECT_TRUE(writer.in_flight());
  for (auto& [name, tensor] : live.tensors)
    tensor.fill_(7);  // the next steps
  writer.wait();
  EXPECT_FALSE(writer.in_flight());
  const Checkpoint loaded = load_checkpoint(checkpoint_path(dir_, 3));
  for (const auto& [name, tensor] : then.tensors)
    EXPECT_TRUE(torch::equal(loaded.tensors.at(name), tensor)) << name;
}

// Note [checkpoint image]: the second and third saves go into the image laid out after the
// previous write, the fourth (other tensors: a phase change) into a new one; each file holds its
// own state, down to a strided view, a scalar and a tensor without elements.
TEST_F(CheckpointTest, BackgroundSavesIntoALaidOutImageHoldEachTheirOwnState) {
  const auto with_awkward_tensors = [](Checkpoint c) {
    c.tensors["model/strided"] = torch::randn({6, 5}).t();
    c.tensors["model/empty"] = torch::zeros({0, 3});
    c.tensors["run/scalar"] = torch::tensor(c.step * 1.5);
    return c;
  };
  BackgroundWriter writer;
  std::vector<Checkpoint> saved;
  for (const int64_t step : {1, 2, 3, 7}) {
    saved.push_back(with_awkward_tensors(make(step)));
    if (step == 7)
      saved.back().tensors["ocm_head/weight"] = torch::randn({2, 9});
    writer.save(dir_, saved.back(), {10, 0, {}});
  }
  writer.wait();
  for (const Checkpoint& c : saved) {
    const Checkpoint loaded = load_checkpoint(checkpoint_path(dir_, c.step));
    EXPECT_EQ(loaded.step, c.step);
    EXPECT_EQ(loaded.phase, c.phase);
    ASSERT_EQ(loaded.tensors.size(), c.tensors.size()) << "step " << c.step;
    for (const auto& [name, tensor] : c.tensors) {
      ASSERT_TRUE(loaded.tensors.count(name)) << name;
      EXPECT_EQ(loaded.tensors.at(name).sizes(), tensor.sizes()) << name;
      EXPECT_TRUE(torch::equal(loaded.tensors.at(name), tensor))
          << "step " << c.step << " " << name;
    }
  }
}

TEST_F(CheckpointTest, ASecondBackgroundSaveWaitsForTheFirstWrite) {
  BackgroundWriter writer;
  writer.save(dir_, make(1), {},
              [] { std::this_thread::sleep_for(std::chrono::milliseconds(500)); });
  const double held = writer.save(dir_, make(2), {});
  EXPECT_GE(held, 0.3) << "the second save did not wait for the first write";
  EXPECT_TRUE(files::exists(checkpoint_path(dir_, 1)));
  writer.wait();
  EXPECT_EQ(load_newest_valid(dir_)->checkpoint.step, 2);
}

TEST_F(CheckpointTest, AFailedBackgroundWriteIsRethrownOnceOnTheCallersThread) {
  std::ofstream(tmp_.join("a-file")) << "x";
  BackgroundWriter writer;
  writer.save(files::join(tmp_.join("a-file"), "checkpoints"), make(1), {});
  test::expect_user_error([&] { writer.wait(); }, {"a-file", "cannot be created"});
  EXPECT_FALSE(writer.in_flight());
  writer.wait();  // reported once: nothing left to rethrow
}

// Runs only as the child of KilledWriterAlwaysLeavesALoadableCheckpoint: saves checkpoints of
// growing steps into $OCM_CHECKPOINT_WRITER_DIR until it is killed. Not a CheckpointTest: it
// makes no directory of its own, which its killer would leave behind.
TEST(CheckpointWriterChild, SavesUntilKilled) {
  const char* target = std::getenv("OCM_CHECKPOINT_WRITER_DIR");
  if (target == nullptr)
    GTEST_SKIP() << "runs only as the crash test's child";
  for (int64_t step = 1;; ++step) {
    Checkpoint c = make(step);
    c.tensors["model/big"] =
        torch::full({1 << 18}, static_cast<float>(step));  // 1 MiB, slower writes
    save_checkpoint(target, c, {2, 0, {}});
  }
}

TEST_F(CheckpointTest, KilledWriterAlwaysLeavesALoadableCheckpoint) {
  char self[4096];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(length, 0);
  self[length] = '\0';
  int64_t last_step = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::setenv("OCM_CHECKPOINT_WRITER_DIR", dir_.c_str(), 1);
      ::execl(self, self, "--gtest_filter=CheckpointWriterChild.SavesUntilKilled",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Once the first checkpoint is complete, kill at a different instant each time. An
    // instrumented build (launch/sanitize.sh) can take seconds to start the child.
    for (int wait = 0; wait < 6000 && !files::exists(files::join(dir_, "latest")); ++wait)
      ::usleep(10000);
    if (!files::exists(files::join(dir_, "latest"))) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      FAIL() << "the writer completed no checkpoint within 60 s";
    }
    ::usleep(static_cast<useconds_t>(7919 * attempt));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer ended by itself";
    const auto found = load_newest_valid(dir_);
    ASSERT_TRUE(found.has_value()) << "attempt " << attempt;
    const Checkpoint expected = make(found->checkpoint.step);
    EXPECT_TRUE(torch::equal(found->checkpoint.tensors.at("model/conv_in.weight"),
                             expected.tensors.at("model/conv_in.weight")));
    EXPECT_EQ(found->checkpoint.tensors.at("model/big")[0].item<float>(),
              static_cast<float>(found->checkpoint.step));
    last_step = found->checkpoint.step;
    files::remove_tree(dir_);
  }
  EXPECT_GT(last_step, 0);
}

}  // namespace
}  // namespace ocm::checkpoints
