// `ocm train` as users and schedulers drive it: real processes under mpirun, real signals,
// kill -9, damaged checkpoints and failing ranks (faults of the whole job on 2 ranks:
// fault_matrix_test.cpp). Each check compares the final checkpoint with an uninterrupted run
// bit for bit.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "checkpoints/layout.h"
#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "tests/e2e/train_fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace ocm {
namespace {

using test::Child;
using test::read_text;
using test::TrainTest;
using Clock = std::chrono::steady_clock;

TEST_F(TrainTest, SignalStopsAllRanksWithACheckpointAndResumingIsBitwiseExact) {
  ASSERT_EQ(train("straight", "", 2), 0);
  Child child(train_command("interrupted", "", 2), files::join(dir_, "interrupted.log"));
  ASSERT_TRUE(wait_for_step("interrupted", 6, 60)) << child.output();
  child.signal(SIGUSR1);  // mpirun passes SIGUSR1 on to every rank
  EXPECT_EQ(child.wait(60), 3) << child.output();
  const auto stopped = checkpoints::load_newest_valid(files::join(dir_, "interrupted/checkpoints"));
  ASSERT_TRUE(stopped.has_value());
  EXPECT_GE(stopped->checkpoint.step, 6);
  EXPECT_LT(stopped->checkpoint.step, 32);
  std::string output;
  ASSERT_EQ(train("interrupted", "", 2, &output), 0) << output;
  EXPECT_NE(output.find("resuming from"), std::string::npos) << output;
  expect_identical_final_checkpoints("straight", "interrupted");
}

TEST_F(TrainTest, ResumeFromAChosenCheckpointOfAnotherRun) {
  ASSERT_EQ(train("straight"), 0);
  std::string output;
  const std::string chosen =
      checkpoints::checkpoint_path(files::join(dir_, "straight/checkpoints"), 16);
  ASSERT_EQ(train("branch", "--resume " + chosen, 0, &output), 0) << output;
  EXPECT_NE(output.find("resuming from " + chosen), std::string::npos) << output;
  EXPECT_FALSE(
      files::exists(checkpoints::checkpoint_path(files::join(dir_, "branch/checkpoints"), 12)));
  expect_identical_final_checkpoints("straight", "branch");
}

// Checkpoints of ocm 0.2 record no generator and were drawn from host streams: resuming one
// with today's default (philox) must go on drawing as the run began, bit for bit.
TEST_F(TrainTest, ACheckpointFromBeforeTheGeneratorChoiceResumesWithItsStreams) {
  ASSERT_EQ(train("straight", "--set run.generator=stream"), 0);
  checkpoints::Checkpoint old = checkpoints::load_checkpoint(
      checkpoints::checkpoint_path(files::join(dir_, "straight/checkpoints"), 8));
  ASSERT_EQ(old.tensors.erase(checkpoints::kGenerator), 1u);
  const std::string old_dir = files::join(dir_, "old");
  checkpoints::save_checkpoint(old_dir, old, {});
  std::string output;
  ASSERT_EQ(train("resumed", "--resume " + checkpoints::checkpoint_path(old_dir, 8), 0, &output), 0)
      << output;
  EXPECT_NE(output.find("drew with the stream generator"), std::string::npos) << output;
  expect_identical_final_checkpoints("straight", "resumed");
  // The default run draws otherwise, so the check above is not vacuous.
  ASSERT_EQ(train("philox"), 0);
  const auto philox = checkpoints::load_checkpoint(final_checkpoint("philox"));
  const auto stream = checkpoints::load_checkpoint(final_checkpoint("straight"));
  EXPECT_EQ(philox.tensors.at(checkpoints::kGenerator).item<int64_t>(), 2);
  int64_t differing = 0;  // the trunk, the head, their EMAs and Adam's state
  for (const auto& [name, tensor] : philox.tensors) {
    if (name.rfind("counters/", 0) != 0 && !torch::equal(tensor, stream.tensors.at(name)))
      ++differing;
  }
  EXPECT_GT(differing, 10);
}

TEST_F(TrainTest, ResumeOnAnotherWorldSizeContinues) {
  ASSERT_EQ(train("run", "--set phases.ocm.steps=2", 2), 0);
  std::string output;
  ASSERT_EQ(train("run", "", 0, &output), 0) << output;
  EXPECT_NE(output.find("written by 2 ranks on 1 ranks"), std::string::npos) << output;
  EXPECT_TRUE(files::exists(final_checkpoint("run")));
}

TEST_F(TrainTest, SecondSignalExitsAtOnce) {
  // Steps of about a second, so the second signal arrives while the first is being honoured.
  Child child(train_command("run", "--set phases.score.batch_size=512 --set model.ch=16"),
              files::join(dir_, "run.log"));
  ASSERT_TRUE(wait_for_step("run", 1, 60)) << child.output();
  child.signal(SIGINT);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (child.output().find("stop requested") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  child.signal(SIGINT);
  EXPECT_EQ(child.wait(10), 128 + SIGINT) << child.output();
}

// Writes no longer hold up the steps (Note [asynchronous checkpoints]), and this small network
// trains 48 steps in well under the random delays below: the run is long enough that every
// attempt is killed mid-run rather than after the end.
TEST_F(TrainTest, KillNineAtAnyInstantAlwaysResumesFromACompleteCheckpoint) {
  const std::string settings = "--set checkpoint.every=1 --set phases.score.steps=400";
  ASSERT_EQ(train("straight", settings), 0);
  const std::string checkpoints = files::join(dir_, "killed/checkpoints");
  auto writing = [&] {
    for (const auto& entry : files::list_directory(checkpoints)) {
      if (entry.name.find(".tmp") != std::string::npos)
        return true;
    }
    return false;
  };
  std::mt19937 random(12345);
  std::uniform_real_distribution<double> delay(0.0, 0.3);
  int kills = 0, kills_during_a_write = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const auto newest = checkpoints::load_newest_valid(checkpoints);
    const int64_t resumed_from = newest ? newest->checkpoint.step : 0;
    Child child(train_command("killed", settings), files::join(dir_, "killed.log"));
    if (!wait_for_step("killed", static_cast<int>(resumed_from) + 2, 60))
      break;
    if (attempt % 2 == 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(delay(random)));
    } else {
      // The instant a checkpoint is being written (its temporary file exists).
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      while (!writing() && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    child.kill_group();
    if (child.wait(10) == 128 + SIGKILL) {
      ++kills;
      kills_during_a_write += writing();
    }
    // Whatever the instant, the newest checkpoint with a manifest verifies.
    EXPECT_TRUE(checkpoints::load_newest_valid(checkpoints).has_value());
  }
  EXPECT_GE(kills, 6);
  EXPECT_GE(kills_during_a_write, 1);
  std::string output;
  ASSERT_EQ(train("killed", settings, 0, &output), 0) << output;
  expect_identical_final_checkpoints("straight", "killed", 408);
}

// Note [asynchronous checkpoints]: the checkpoint of step 8 is held back in the background
// (OCM_FAULT=slow_write) while steps 9 to 12 train; the one of step 12 then waits for it, and
// the run's end waits for the last one. A kill inside that window loses the checkpoint being
// written and nothing else.
TEST_F(TrainTest, TrainingGoesOnWhileACheckpointIsWrittenAndAKillThereLosesOnlyThatOne) {
  ASSERT_EQ(train("straight"), 0);
  setenv("OCM_FAULT", "slow_write:0:8", 1);
  std::string output;
  const int code = train("slow", "", 0, &output);
  EXPECT_EQ(code, 0) << output;
  const size_t waited = output.find("waiting for the checkpoint of step 8 to finish writing");
  const size_t written = output.find("ckpt-0000000008.h5 written in the background");
  ASSERT_NE(waited, std::string::npos) << output;
  ASSERT_NE(written, std::string::npos) << output;
  EXPECT_LT(waited, written) << "step 12 was not reached while step 8 was being written";
  expect_identical_final_checkpoints("straight", "slow");

  Child child(train_command("killed"), files::join(dir_, "killed.log"));
  ASSERT_TRUE(wait_for_step("killed", 10, 60)) << child.output();
  child.kill_group();
  EXPECT_EQ(child.wait(10), 128 + SIGKILL) << child.output();
  unsetenv("OCM_FAULT");
  ASSERT_EQ(child.output().find("ckpt-0000000008.h5 written"), std::string::npos)
      << "the write ended before the kill; the window was missed:\n"
      << child.output();
  const auto newest = checkpoints::load_newest_valid(files::join(dir_, "killed/checkpoints"));
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->checkpoint.step, 4);
  ASSERT_EQ(train("killed", "", 0, &output), 0) << output;
  expect_identical_final_checkpoints("straight", "killed");
}

TEST_F(TrainTest, DamagedNewestCheckpointIsReportedAndThePreviousOneUsed) {
  ASSERT_EQ(train("straight"), 0);
  ASSERT_EQ(train("damaged", "--set phases.ocm.steps=4"), 0);
  // Step 28 is the newest; flip one byte in the middle of its tensors.
  const std::string newest =
      checkpoints::checkpoint_path(files::join(dir_, "damaged/checkpoints"), 28);
  {
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(files::file_size(newest) / 2);
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(files::file_size(newest) / 2);
    byte = static_cast<char>(byte ^ 0x10);
    file.write(&byte, 1);
  }
  std::string output;
  ASSERT_EQ(train("damaged", "", 0, &output), 0) << output;
  EXPECT_NE(output.find("skipping checkpoint " + newest), std::string::npos) << output;
  EXPECT_NE(output.find("sha256"), std::string::npos) << output;
  EXPECT_NE(output.find("resuming from"), std::string::npos) << output;
  expect_identical_final_checkpoints("straight", "damaged");
}

TEST_F(TrainTest, ARankThatThrowsEndsEveryRankWithinSeconds) {
  setenv("OCM_FAULT", "throw:1:3", 1);
  const auto start = Clock::now();
  std::string output;
  const int code = train("run", "", 2, &output);
  unsetenv("OCM_FAULT");
  EXPECT_NE(code, 0) << output;
  EXPECT_NE(code, -1) << "the job hung:\n" << output;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 30);
  EXPECT_NE(output.find("injected fault (OCM_FAULT) at step 3"), std::string::npos) << output;
}

TEST_F(TrainTest, AStalledRankAbortsTheJobAfterTheTimeout) {
  setenv("OCM_FAULT", "stall:1:3", 1);
  std::string output;
  const int code = train("run", "--set dist.timeout_s=2", 2, &output);
  unsetenv("OCM_FAULT");
  EXPECT_EQ(code, 4) << output;
  EXPECT_NE(output.find("did not complete within 2 s"), std::string::npos) << output;
  // Rank 0 waits in step 3's gradient all-reduce; the message says so (dist::CollectivePurpose).
  EXPECT_NE(output.find("(the gradients of step 3)"), std::string::npos) << output;
}

TEST_F(TrainTest, NonFiniteGradientSkipsTheStepOnEveryRankAndTooManyAbort) {
  setenv("OCM_FAULT", "nan:1:5", 1);
  std::string output;
  EXPECT_EQ(train("run", "", 2, &output), 0) << output;
  EXPECT_NE(output.find("step 5: non-finite"), std::string::npos) << output;
  const std::string metrics = read_text(files::join(dir_, "run/metrics.jsonl"));
  EXPECT_NE(metrics.find("\"skipped\":1,\"step\":32"), std::string::npos) << metrics;
  EXPECT_EQ(train("diverged", "--set run.max_bad_steps=1", 2, &output), 5) << output;
  unsetenv("OCM_FAULT");
  EXPECT_NE(output.find("training has diverged"), std::string::npos) << output;
}

TEST_F(TrainTest, IncompatibleConfigIsRefusedNamingTheKeys) {
  ASSERT_EQ(train("run", "--set phases.score.steps=4 --set phases.ocm.steps=1"), 0);
  std::string output;
  EXPECT_EQ(train("run", "--set model.ch=16 --set diffusion.schedule=cosine", 0, &output), 2)
      << output;
  EXPECT_NE(output.find("model.ch: 8 -> 16"), std::string::npos) << output;
  EXPECT_NE(output.find("diffusion.schedule: \"linear\" -> \"cosine\""), std::string::npos)
      << output;
}

TEST_F(TrainTest, AnotherHeadTrainsOnTheTrunkOfAFinishedRun) {
  ASSERT_EQ(train("straight"), 0);
  const std::string score_end =
      checkpoints::checkpoint_path(files::join(dir_, "straight/checkpoints"), 24);
  std::string output;
  ASSERT_EQ(train("complex", "--resume " + score_end + " --set model.head=complex", 0, &output), 0)
      << output;
  EXPECT_NE(output.find("model.head: \"simple\" -> \"complex\""), std::string::npos) << output;
  const auto simple = checkpoints::load_checkpoint(final_checkpoint("straight"));
  const auto complex = checkpoints::load_checkpoint(final_checkpoint("complex"));
  int64_t trunk_tensors = 0;
  for (const auto& [name, tensor] : simple.tensors) {
    if (name.rfind("trunk/", 0) == 0) {
      ++trunk_tensors;
      EXPECT_TRUE(torch::equal(tensor, complex.tensors.at(name))) << name;
    }
  }
  EXPECT_GT(trunk_tensors, 0);
  EXPECT_GT(complex.tensors.size(), simple.tensors.size());  // the residual block's weights
  // From the end of the OCM phase, the phase starts over on that checkpoint's trunk: the same
  // head, bit for bit, as from the end of the score phase.
  ASSERT_EQ(
      train("complex-again",
            "--resume " + final_checkpoint("straight") + " --set model.head=complex", 0, &output),
      0)
      << output;
  expect_identical_final_checkpoints("complex", "complex-again");
}

TEST_F(TrainTest, BatchThatRanksCannotShareExitsWithAUserErrorAndWritesNothing) {
  std::string output;
  EXPECT_EQ(train("uneven", "--set phases.score.batch_size=7", 2, &output), 2) << output;
  EXPECT_NE(output.find("2 ranks cannot share equally"), std::string::npos) << output;
  EXPECT_FALSE(files::exists(files::join(dir_, "uneven")));
}

TEST_F(TrainTest, AHeadThatCannotFitTheNetworkIsRefusedBeforeTraining) {
  std::string output;
  EXPECT_EQ(train("misfit", "--set model.head=mlp", 0, &output), 2) << output;
  EXPECT_NE(output.find("model.head: `mlp` does not fit a unet network"), std::string::npos)
      << output;
  EXPECT_FALSE(files::exists(files::join(dir_, "misfit")));
}

TEST_F(TrainTest, MissingDatasetExitsWithAUserErrorAndWritesNothing) {
  std::string output;
  EXPECT_EQ(train("nodata", "--set data.path=/nonexistent/data", 0, &output), 2) << output;
  EXPECT_FALSE(files::exists(files::join(dir_, "nodata")));
}

TEST_F(TrainTest, MissingResumeCheckpointExitsWithAUserError) {
  std::string output;
  EXPECT_EQ(train("nodata", "--resume /nonexistent/ckpt-0000000004.h5", 0, &output), 2) << output;
}

}  // namespace
}  // namespace ocm
