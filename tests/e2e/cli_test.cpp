// Drives the built `ocm` binary the way a user does and checks exit codes and messages.
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

class CliTest : public ::testing::Test {
 protected:
  // Runs `ocm <args>` inside the work directory.
  ocm::test::Outcome ocm(const std::string& args) const {
    return ocm::test::run_command("cd '" + workdir_.string() + "' && " + std::string(OCM_BINARY) +
                                  " " + args);
  }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream(workdir_ / name) << text;
  }

  // The files in the work directory other than the given inputs.
  std::vector<std::string> written_besides(const std::vector<std::string>& inputs) const {
    std::vector<std::string> extra;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(workdir_)) {
      const std::string name = entry.path().filename().string();
      if (std::find(inputs.begin(), inputs.end(), name) == inputs.end())
        extra.push_back(name);
    }
    return extra;
  }

  ocm::test::TempDir tmp_{"ocm-cli-test"};
  const std::filesystem::path workdir_ = tmp_.path();
};

TEST_F(CliTest, VersionNamesLibTorchAndBackends) {
  const ocm::test::Outcome out = ocm("--version");
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("ocm 0."), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("LibTorch "), std::string::npos) << out.output;
  for (const char* backend : {"CUDA: ", "NCCL: ", "MPI: "}) {
    EXPECT_NE(out.output.find(backend), std::string::npos) << backend << "\n" << out.output;
  }
}

TEST_F(CliTest, HelpListsCommandsAndUnknownCommandIsAUserError) {
  const ocm::test::Outcome help = ocm("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("config"), std::string::npos) << help.output;
  EXPECT_EQ(ocm("config show --help").exit_code, 0);
  EXPECT_EQ(ocm("frobnicate").exit_code, 2);
  EXPECT_EQ(ocm("config show").exit_code, 2);  // the file argument is required
}

TEST_F(CliTest, ShowPrintsTheResolvedConfigWithOverrides) {
  write("run.yaml", "phases:\n  score:\n    steps: 50\n");
  const ocm::test::Outcome out =
      ocm("config show run.yaml --set phases.ocm.steps=7 --set diffusion.schedule=cosine");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("  score:\n    steps: 50"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("  ocm:\n    steps: 7"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("schedule: \"cosine\""), std::string::npos) << out.output;
}

// A command line (after writing run.yaml, unless file_text is null) that must fail.
struct BadInput {
  const char* name;
  const char* file_text;  // nullptr: no file is written
  const char* arguments;
  std::vector<const char*> message_parts;
};
void PrintTo(const BadInput& bad, std::ostream* out) {
  *out << bad.name;
}

class CliBadInput : public CliTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(CliBadInput, ExitsTwoNamingFileAndKeyAndWritesNothing) {
  const BadInput& c = GetParam();
  std::vector<std::string> inputs;
  if (c.file_text != nullptr) {
    write("run.yaml", c.file_text);
    inputs.push_back("run.yaml");
  }
  const ocm::test::Outcome out = ocm(c.arguments);
  EXPECT_EQ(out.exit_code, 2) << out.output;
  for (const char* part : c.message_parts) {
    EXPECT_NE(out.output.find(part), std::string::npos) << "missing '" << part << "' in:\n"
                                                        << out.output;
  }
  EXPECT_NE(out.output.find("ocm: error: "), std::string::npos) << out.output;
  // One paragraph, no backtrace or library noise.
  EXPECT_EQ(out.output.find("terminate called"), std::string::npos) << out.output;
  EXPECT_EQ(std::count(out.output.begin(), out.output.end(), '\n'), 1) << out.output;
  EXPECT_TRUE(written_besides(inputs).empty());
}

INSTANTIATE_TEST_SUITE_P(
    , CliBadInput,
    ::testing::Values(
        BadInput{"MissingFile", nullptr, "config show absent.yaml", {"absent.yaml", "cannot open"}},
        BadInput{"EmptyFile", "", "config show run.yaml", {"run.yaml", "empty"}},
        BadInput{"SyntaxError",
                 "run:\n  seed: [1,\n",
                 "config show run.yaml",
                 {"run.yaml:", "syntax error"}},
        BadInput{"UnknownSection",
                 "modle:\n  ch: 1\n",
                 "config show run.yaml",
                 {"run.yaml:1:1", "unknown section `modle`", "`model`"}},
        BadInput{"UnknownKey",
                 "phases:\n  score:\n    stesp: 3\n",
                 "config show run.yaml",
                 {"run.yaml:3:5", "`stesp`", "Did you mean `steps`"}},
        BadInput{"WrongType",
                 "log:\n  every: often\n",
                 "config show run.yaml",
                 {"run.yaml:2:10", "log.every", "`often`", "integer"}},
        BadInput{"NegativeSteps",
                 "phases:\n  ocm:\n    steps: -3\n",
                 "config show run.yaml",
                 {"run.yaml:3:12", "phases.ocm.steps", "-3", ">= 1"}},
        BadInput{"SetWithoutEquals",
                 "run:\n  seed: 1\n",
                 "config show run.yaml --set run.seed",
                 {"--set run.seed", "section.key=value"}},
        BadInput{"SetUnknownKey",
                 "run:\n  seed: 1\n",
                 "config show run.yaml --set run.sede=3",
                 {"--set run.sede=3", "unknown key", "Did you mean `run.seed`"}}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return std::string(info.param.name); });

TEST_F(CliTest, DataPrepareOfAMissingSourceNamesTheFileAndWritesNothing) {
  const ocm::test::Outcome missing = ocm("data prepare mnist --source absent --out ds");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("absent/train-images-idx3-ubyte.gz"), std::string::npos)
      << missing.output;
  EXPECT_TRUE(written_besides({}).empty());
}

TEST_F(CliTest, DataPrepareWithoutASourceIsAUserError) {
  const ocm::test::Outcome no_source = ocm("data prepare mnist --out ds");
  EXPECT_EQ(no_source.exit_code, 2) << no_source.output;
}

TEST_F(CliTest, DataPrepareOfAnUnknownDatasetIsAUserError) {
  EXPECT_EQ(ocm("data prepare cifar100 --out ds").exit_code, 2);
}

TEST_F(CliTest, DataVerifyOfAFolderWithoutAManifestNamesIt) {
  const ocm::test::Outcome not_a_dataset = ocm("data verify .");
  EXPECT_EQ(not_a_dataset.exit_code, 2) << not_a_dataset.output;
  EXPECT_NE(not_a_dataset.output.find("manifest.json"), std::string::npos) << not_a_dataset.output;
}

TEST_F(CliTest, DataInfoOfABrokenManifestSaysItIsNotJson) {
  write("manifest.json", "{\"format_version\": 1, \"kind\": \"images\"");
  const ocm::test::Outcome broken = ocm("data info .");
  EXPECT_EQ(broken.exit_code, 2) << broken.output;
  EXPECT_NE(broken.output.find("not valid JSON"), std::string::npos) << broken.output;
}

}  // namespace
