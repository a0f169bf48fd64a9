#include "common/log.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("OCM_LOG_LEVEL"); }
  void TearDown() override {
    set_log_step(-1);
    spdlog::shutdown();
    unsetenv("OCM_LOG_LEVEL");
  }
  test::TempDir tmp_{"ocm-log-test"};
  const std::filesystem::path dir_ = tmp_.join("log");  // not made: the tests decide
};

TEST_F(LogTest, RankFileCarriesRankAndStepAndOnlyRankZeroUsesTheConsole) {
  ::testing::internal::CaptureStderr();
  init_logging({"info", 3, (dir_ / "logs").string()});
  spdlog::info("before the loop");
  set_log_step(42);
  spdlog::info("inside the loop");
  spdlog::debug("below the level");
  spdlog::default_logger()->flush();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  const std::string text = read_file(dir_ / "logs" / "rank-3.log");
  EXPECT_NE(text.find("[rank 3] before the loop"), std::string::npos) << text;
  EXPECT_NE(text.find("[rank 3] [step 42] inside the loop"), std::string::npos) << text;
  EXPECT_EQ(text.find("below the level"), std::string::npos) << text;
}

TEST_F(LogTest, RankZeroWritesToStderr) {
  ::testing::internal::CaptureStderr();
  init_logging({"info", 0, ""});
  spdlog::warn("visible");
  spdlog::default_logger()->flush();
  const std::string text = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(text.find("[rank 0] visible"), std::string::npos) << text;
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(LogTest, EnvironmentLevelWinsAndIsChecked) {
  EXPECT_EQ(effective_log_level("info"), "info");
  setenv("OCM_LOG_LEVEL", "debug", 1);
  EXPECT_EQ(effective_log_level("info"), "debug");
  setenv("OCM_LOG_LEVEL", "verbose", 1);
  test::expect_user_error([] { effective_log_level("info"); }, {"OCM_LOG_LEVEL", "`verbose`"});
}

TEST_F(LogTest, UnwritableLogDirectoryIsAUserError) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  // A regular file where the directory should be cannot be opened as a directory, even as root.
  EXPECT_THROW(init_logging({"info", 1, (dir_ / "file" / "logs").string()}), UserError);
}

}  // namespace
}  // namespace ocm
