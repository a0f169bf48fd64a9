#include "common/config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/error.h"

namespace ocm {
namespace {

// Parses `text` and returns the UserError message, failing the test if nothing was thrown.
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, "run.yaml", overrides);
  } catch (const UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UserError for:\n" << text;
  return "";
}

TEST(Config, DefaultsComeFromTheSchema) {
  const Config config = default_config();
  EXPECT_EQ(config.diffusion.num_timesteps, 1000);
  EXPECT_EQ(config.diffusion.schedule, "linear");
  EXPECT_EQ(config.log.level, "info");
  EXPECT_TRUE(config.log.rank_files);
}

TEST(Config, FileValuesReplaceDefaultsAndNestedSectionsWork) {
  const Config config = parse_config(
      "diffusion:\n  schedule: cosine\nphases:\n  score:\n    steps: 50\n    lr: 1e-3\n"
      "  ocm:\n    batch_size: 64\nlog:\n  rank_files: false\n",
      "run.yaml");
  EXPECT_EQ(config.diffusion.schedule, "cosine");
  EXPECT_EQ(config.phases.score.steps, 50);
  EXPECT_DOUBLE_EQ(config.phases.score.lr, 1e-3);
  EXPECT_EQ(config.phases.ocm.batch_size, 64);
  EXPECT_EQ(config.phases.ocm.steps, default_config().phases.ocm.steps);
  EXPECT_FALSE(config.log.rank_files);
}

TEST(Config, UnknownKeyNamesFileLineAndClosestKey) {
  const std::string message = error_of("phases:\n  score:\n    batch_size: 8\n    stpes: 10\n");
  EXPECT_NE(message.find("run.yaml:4:5"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key `stpes`"), std::string::npos) << message;
  EXPECT_NE(message.find("phases.score"), std::string::npos) << message;
  EXPECT_NE(message.find("Did you mean `steps`"), std::string::npos) << message;
}

TEST(Config, UnknownSectionSuggestsTheSection) {
  const std::string message = error_of("diffusoin:\n  schedule: linear\n");
  EXPECT_NE(message.find("run.yaml:1:1"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown section `diffusoin`"), std::string::npos) << message;
  EXPECT_NE(message.find("Did you mean `diffusion`"), std::string::npos) << message;
}

TEST(Config, KeyInTheWrongSectionSaysWhereItBelongs) {
  const std::string message = error_of("run:\n  steps: 10\n");
  EXPECT_NE(message.find("`phases.score`"), std::string::npos) << message;
}

TEST(Config, WrongTypeNamesKeyValueAndType) {
  const std::string message = error_of("phases:\n  score:\n    steps: ten\n");
  EXPECT_NE(message.find("run.yaml:3:12"), std::string::npos) << message;
  EXPECT_NE(message.find("phases.score.steps"), std::string::npos) << message;
  EXPECT_NE(message.find("`ten`"), std::string::npos) << message;
  EXPECT_NE(message.find("an integer"), std::string::npos) << message;
  EXPECT_NE(error_of("phases:\n  score:\n    steps: 1.5\n").find("an integer"), std::string::npos);
  EXPECT_NE(error_of("phases:\n  score:\n    steps: \"5\"\n").find("quoted"), std::string::npos);
  EXPECT_NE(error_of("phases:\n  score:\n    steps: [1, 2]\n").find("a list"), std::string::npos);
  EXPECT_NE(error_of("log:\n  rank_files: yes\n").find("true or false"), std::string::npos);
  EXPECT_NE(error_of("phases:\n  score:\n    lr: .nan\n").find("finite"), std::string::npos);
  EXPECT_NE(error_of("phases:\n  score:\n    steps:\n").find("nothing"), std::string::npos);
}

TEST(Config, OutOfRangeNamesKeyValueAndRange) {
  const std::string message = error_of("phases:\n  score:\n    steps: -5\n");
  EXPECT_NE(message.find("phases.score.steps"), std::string::npos) << message;
  EXPECT_NE(message.find("-5"), std::string::npos) << message;
  EXPECT_NE(message.find(">= 1"), std::string::npos) << message;
  const std::string lr = error_of("phases:\n  ocm:\n    lr: 0\n");
  EXPECT_NE(lr.find("in (0, 1]"), std::string::npos) << lr;
  const std::string huge = error_of("phases:\n  ocm:\n    steps: 99999999999999999999\n");
  EXPECT_NE(huge.find("64 bits"), std::string::npos) << huge;
}

TEST(Config, IntegerListsAreCheckedElementByElement) {
  const Config config =
      parse_config("model:\n  ch_mult: [1, 2, 2]\n  attn_resolutions: []\n", "run.yaml");
  EXPECT_EQ(config.model.ch_mult, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_TRUE(config.model.attn_resolutions.empty());
  EXPECT_NE(error_of("model:\n  ch_mult: 2\n").find("a list of integers"), std::string::npos);
  EXPECT_NE(error_of("model:\n  ch_mult: [1, two]\n").find("`two`"), std::string::npos);
  const std::string range = error_of("model:\n  ch_mult: [1, 0]\n");
  EXPECT_NE(range.find("model.ch_mult"), std::string::npos) << range;
  EXPECT_NE(range.find("every element >= 1"), std::string::npos) << range;
}

TEST(Config, ChoiceListsOptionsAndGuesses) {
  const std::string message = error_of("diffusion:\n  schedule: cosin\n");
  EXPECT_NE(message.find("linear or cosine"), std::string::npos) << message;
  EXPECT_NE(message.find("Did you mean `cosine`"), std::string::npos) << message;
}

TEST(Config, SyntaxErrorCarriesTheLine) {
  const std::string message = error_of("run:\n  seed: 1\n  dir: [unclosed\n");
  EXPECT_NE(message.find("run.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("YAML syntax error"), std::string::npos) << message;
  EXPECT_NE(error_of("run:\n\tseed: 1\n").find("run.yaml:2:"), std::string::npos);
}

TEST(Config, EmptyAndNonMappingDocumentsAreRejected) {
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("# only a comment\n").find("empty"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find("not a mapping"), std::string::npos);
  EXPECT_NE(error_of("phases: 3\n").find("section `phases`"), std::string::npos);
}

TEST(Config, DuplicateKeysAreRejected) {
  const std::string message = error_of("run:\n  seed: 1\n  seed: 2\n");
  EXPECT_NE(message.find("run.yaml:3:3"), std::string::npos) << message;
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
}

TEST(Config, OverridesGoThroughTheSameChecks) {
  const Config config =
      parse_config("run:\n  seed: 1\n", "run.yaml",
                   {"run.seed=7", "phases.ocm.lr=5e-5", "diffusion.schedule=cosine"});
  EXPECT_EQ(config.run.seed, 7);
  EXPECT_DOUBLE_EQ(config.phases.ocm.lr, 5e-5);
  EXPECT_EQ(config.diffusion.schedule, "cosine");

  EXPECT_NE(error_of("run:\n  seed: 1\n", {"run.seed"}).find("section.key=value"),
            std::string::npos);
  const std::string unknown = error_of("run:\n  seed: 1\n", {"phases.score.step=3"});
  EXPECT_NE(unknown.find("--set phases.score.step=3"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("Did you mean `phases.score.steps`"), std::string::npos) << unknown;
  const std::string range = error_of("run:\n  seed: 1\n", {"phases.score.steps=-1"});
  EXPECT_NE(range.find("--set phases.score.steps=-1"), std::string::npos) << range;
  EXPECT_NE(range.find(">= 1"), std::string::npos) << range;
  EXPECT_NE(error_of("run:\n  seed: 1\n", {"phases.score=1"}).find("is a section"),
            std::string::npos);
  EXPECT_NE(error_of("run:\n  seed: 1\n", {"run.seed="}).find("nothing"), std::string::npos);
}

TEST(Config, PrintedConfigReadsBackToTheSameConfig) {
  const Config config = parse_config("run:\n  dir: \"runs/a \\\"quoted\\\" dir\"\n", "run.yaml",
                                     {"phases.score.lr=3.0000000000000004e-4", "log.level=debug"});
  const std::string printed = to_yaml(config);
  const Config reread = parse_config(printed, "printed");
  EXPECT_EQ(to_yaml(reread), printed);
  EXPECT_EQ(reread.run.dir, "runs/a \"quoted\" dir");
  EXPECT_EQ(reread.phases.score.lr, config.phases.score.lr);  // bit-exact round trip
  EXPECT_NE(printed.find("phases:\n  score:\n    steps: "), std::string::npos) << printed;
}

TEST(Config, MissingFileIsAUserError) {
  try {
    load_config("/nonexistent/run.yaml");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/run.yaml"), std::string::npos);
  }
}

}  // namespace
}  // namespace ocm

namespace ocm {
namespace {

TEST(ShippedConfigs, EveryFileInConfigsIsValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(OCM_CONFIG_DIR)) {
    if (entry.path().extension() != ".yaml")
      continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_config(entry.path().string()));
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace ocm
