#include "common/config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/support/user_error.h"

namespace ocm {
namespace {

using test::expect_user_error;

// Parsing `text` as run.yaml with `overrides`, as a body for expect_user_error.
std::function<void()> parsing(const std::string& text,
                              const std::vector<std::string>& overrides = {}) {
  return [=] { parse_config(text, "run.yaml", overrides); };
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
  expect_user_error(
      parsing("phases:\n  score:\n    batch_size: 8\n    stpes: 10\n"),
      {"run.yaml:4:5", "unknown key `stpes`", "phases.score", "Did you mean `steps`"});
}

TEST(Config, AnEmptyEvalSectionOfEarlierVersionsStillLoads) {
  // Every config.yaml and checkpoint written before the section was retired ends with it.
  const Config config = parse_config("run: {seed: 5}\neval: {}\n", "old.yaml");
  EXPECT_EQ(config.run.seed, 5);
  EXPECT_EQ(parse_config("eval:\n", "old.yaml").run.seed, default_config().run.seed);
  EXPECT_EQ(to_yaml(config).find("\neval:"), std::string::npos);
  test::expect_user_error([] { parse_config("eval: {steps: 5}\n", "new.yaml"); },
                          {"new.yaml", "eval"});
}

TEST(Config, UnknownSectionSuggestsTheSection) {
  expect_user_error(parsing("diffusoin:\n  schedule: linear\n"),
                    {"run.yaml:1:1", "unknown section `diffusoin`", "Did you mean `diffusion`"});
}

TEST(Config, KeyInTheWrongSectionSaysWhereItBelongs) {
  expect_user_error(parsing("run:\n  steps: 10\n"), {"`phases.score`"});
}

TEST(Config, IntegerListsAreRead) {
  const Config config =
      parse_config("model:\n  ch_mult: [1, 2, 2]\n  attn_resolutions: []\n", "run.yaml");
  EXPECT_EQ(config.model.ch_mult, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_TRUE(config.model.attn_resolutions.empty());
}

TEST(Config, ChoiceListsOptionsAndGuesses) {
  expect_user_error(parsing("diffusion:\n  schedule: cosin\n"),
                    {"linear or cosine", "Did you mean `cosine`"});
}

TEST(Config, DuplicateKeysAreRejected) {
  expect_user_error(parsing("run:\n  seed: 1\n  seed: 2\n"), {"run.yaml:3:3", "twice"});
}

TEST(Config, OverridesSetValues) {
  const Config config =
      parse_config("run:\n  seed: 1\n", "run.yaml",
                   {"run.seed=7", "phases.ocm.lr=5e-5", "diffusion.schedule=cosine"});
  EXPECT_EQ(config.run.seed, 7);
  EXPECT_DOUBLE_EQ(config.phases.ocm.lr, 5e-5);
  EXPECT_EQ(config.diffusion.schedule, "cosine");
}

// A config (run.yaml's text and --set overrides) that parse_config refuses with a UserError
// whose message holds every one of `parts`.
struct BadConfig {
  std::string name;
  std::string text;
  std::vector<std::string> overrides;
  std::vector<std::string> parts;
};
void PrintTo(const BadConfig& bad, std::ostream* out) {
  *out << bad.name;
}
std::string name_of(const ::testing::TestParamInfo<BadConfig>& info) {
  return info.param.name;
}

class ConfigRejects : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigRejects, NamingWhatIsWrong) {
  expect_user_error(parsing(GetParam().text, GetParam().overrides), GetParam().parts);
}

// The key, the value and the type that was expected.
INSTANTIATE_TEST_SUITE_P(
    WrongType, ConfigRejects,
    ::testing::Values(
        BadConfig{"WordForAnInteger",
                  "phases:\n  score:\n    steps: ten\n",
                  {},
                  {"run.yaml:3:12", "phases.score.steps", "`ten`", "an integer"}},
        BadConfig{
            "FractionForAnInteger", "phases:\n  score:\n    steps: 1.5\n", {}, {"an integer"}},
        BadConfig{"QuotedInteger", "phases:\n  score:\n    steps: \"5\"\n", {}, {"quoted"}},
        BadConfig{"ListForAnInteger", "phases:\n  score:\n    steps: [1, 2]\n", {}, {"a list"}},
        BadConfig{"YesForABoolean", "log:\n  rank_files: yes\n", {}, {"true or false"}},
        BadConfig{"NanForANumber", "phases:\n  score:\n    lr: .nan\n", {}, {"finite"}},
        BadConfig{"NothingForAnInteger", "phases:\n  score:\n    steps:\n", {}, {"nothing"}}),
    name_of);

// The key, the value and the range.
INSTANTIATE_TEST_SUITE_P(
    OutOfRange, ConfigRejects,
    ::testing::Values(BadConfig{"NegativeSteps",
                                "phases:\n  score:\n    steps: -5\n",
                                {},
                                {"phases.score.steps", "-5", ">= 1"}},
                      BadConfig{
                          "ZeroLearningRate", "phases:\n  ocm:\n    lr: 0\n", {}, {"in (0, 1]"}},
                      BadConfig{"StepsBeyond64Bits",
                                "phases:\n  ocm:\n    steps: 99999999999999999999\n",
                                {},
                                {"64 bits"}}),
    name_of);

// Integer lists are checked element by element.
INSTANTIATE_TEST_SUITE_P(
    IntegerList, ConfigRejects,
    ::testing::Values(
        BadConfig{"ScalarForAList", "model:\n  ch_mult: 2\n", {}, {"a list of integers"}},
        BadConfig{"WordElement", "model:\n  ch_mult: [1, two]\n", {}, {"`two`"}},
        BadConfig{"ElementOutOfRange",
                  "model:\n  ch_mult: [1, 0]\n",
                  {},
                  {"model.ch_mult", "every element >= 1"}}),
    name_of);

// YAML syntax errors carry the line.
INSTANTIATE_TEST_SUITE_P(SyntaxError, ConfigRejects,
                         ::testing::Values(BadConfig{"UnclosedList",
                                                     "run:\n  seed: 1\n  dir: [unclosed\n",
                                                     {},
                                                     {"run.yaml:", "YAML syntax error"}},
                                           BadConfig{
                                               "Tab", "run:\n\tseed: 1\n", {}, {"run.yaml:2:"}}),
                         name_of);

// Empty documents and documents (or sections) that are not mappings.
INSTANTIATE_TEST_SUITE_P(
    Document, ConfigRejects,
    ::testing::Values(BadConfig{"Empty", "", {}, {"empty"}},
                      BadConfig{"OnlyAComment", "# only a comment\n", {}, {"empty"}},
                      BadConfig{"List", "- a\n- b\n", {}, {"not a mapping"}},
                      BadConfig{"ScalarSection", "phases: 3\n", {}, {"section `phases`"}}),
    name_of);

// --set overrides go through the same checks as the file, and the message names the --set.
INSTANTIATE_TEST_SUITE_P(
    Override, ConfigRejects,
    ::testing::Values(
        BadConfig{"WithoutEquals", "run:\n  seed: 1\n", {"run.seed"}, {"section.key=value"}},
        BadConfig{"UnknownKey",
                  "run:\n  seed: 1\n",
                  {"phases.score.step=3"},
                  {"--set phases.score.step=3", "Did you mean `phases.score.steps`"}},
        BadConfig{"OutOfRange",
                  "run:\n  seed: 1\n",
                  {"phases.score.steps=-1"},
                  {"--set phases.score.steps=-1", ">= 1"}},
        BadConfig{"Section", "run:\n  seed: 1\n", {"phases.score=1"}, {"is a section"}},
        BadConfig{"NoValue", "run:\n  seed: 1\n", {"run.seed="}, {"nothing"}}),
    name_of);

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
  expect_user_error([] { load_config("/nonexistent/run.yaml"); }, {"/nonexistent/run.yaml"});
}

}  // namespace
}  // namespace ocm

namespace ocm {
namespace {

TEST(ShippedConfigs, EveryFileInConfigsIsValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(OCM_CONFIG_DIR)) {
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
