// How a checkpoint continues a run (trainer/resume.h), decided from the configs' values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/config.h"
#include "tests/support/user_error.h"
#include "trainer/resume.h"
#include "trainer/run.h"

namespace ocm::trainer {
namespace {

Config config_with(const std::vector<std::string>& overrides) {
  return parse_config("model: {kind: unet, ch: 8, ch_mult: [1, 2], head: simple}\n", "resume_test",
                      overrides);
}

// A checkpoint of `phase` as `ocm train` would have written it for `config`.
checkpoints::Checkpoint written_by(const Config& config, const std::string& phase) {
  checkpoints::Checkpoint c;
  c.phase = phase;
  c.config_yaml = to_yaml(config);
  c.config_hash = config_hash(config);
  return c;
}

TEST(ResumeKind, TheSameConfigContinuesTheCheckpointsPhase) {
  const Config config = config_with({});
  EXPECT_EQ(resume_kind(written_by(config, "score"), config, "ckpt.h5"),
            ResumeKind::kContinueScore);
  EXPECT_EQ(resume_kind(written_by(config, "ocm"), config, "ckpt.h5"), ResumeKind::kContinueOcm);
}

TEST(ResumeKind, AnotherHeadOnAnOcmCheckpointTrainsANewHeadOnItsTrunk) {
  const Config complex = config_with({"model.head=complex"});
  EXPECT_EQ(resume_kind(written_by(config_with({}), "ocm"), complex, "ckpt.h5"),
            ResumeKind::kNewHeadOnTrunk);
}

TEST(ResumeKind, AnotherHeadOnAScoreCheckpointContinuesTheScorePhase) {
  const Config complex = config_with({"model.head=complex"});
  EXPECT_EQ(resume_kind(written_by(config_with({}), "score"), complex, "ckpt.h5"),
            ResumeKind::kContinueScore);
}

TEST(ResumeKind, AnotherTrunkIsRefusedNamingEveryKeyThatDiffers) {
  const Config wider = config_with({"model.ch=16", "model.head=complex"});
  test::expect_user_error(
      [&] { resume_kind(written_by(config_with({}), "ocm"), wider, "ckpt.h5"); },
      {"ckpt.h5", "model.ch: 8 -> 16", "model.head", "different model or diffusion settings"});
}

TEST(ResumeKind, ADifferentScheduleIsRefused) {
  const Config cosine = config_with({"diffusion.schedule=cosine"});
  test::expect_user_error(
      [&] { resume_kind(written_by(config_with({}), "score"), cosine, "ckpt.h5"); },
      {"diffusion.schedule"});
}

TEST(ResumeKind, ARunSettingDoesNotMatter) {
  const Config longer = config_with({"phases.score.steps=99", "run.seed=7"});
  EXPECT_EQ(resume_kind(written_by(config_with({}), "ocm"), longer, "ckpt.h5"),
            ResumeKind::kContinueOcm);
}

TEST(ResumeKind, AnUnknownPhaseIsRefused) {
  const Config config = config_with({});
  test::expect_user_error([&] { resume_kind(written_by(config, "warmup"), config, "ckpt.h5"); },
                          {"ckpt.h5", "phase `warmup`", "score or ocm"});
}

TEST(ResumeKind, AnUnreadableRecordedConfigWithAnotherHashIsRefused) {
  checkpoints::Checkpoint c = written_by(config_with({}), "ocm");
  c.config_yaml = "model: [not, a, mapping]";
  c.config_hash = "0000";
  test::expect_user_error([&] { resume_kind(c, config_with({}), "ckpt.h5"); },
                          {"cannot be read by this version"});
}

}  // namespace
}  // namespace ocm::trainer
