// A scratch directory per test, removed when the test is done with it.
#pragma once

#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "common/files.h"

namespace ocm::test {

// The running test as "Suite.Name" (in SetUpTestSuite the suite alone, in a global Environment
// "global"), with every character other than letters, digits, '-', '_' and '.' replaced by '_'
// (parameterised names hold '/').
inline std::string current_test_label() {
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  std::string label = "global";
  if (const ::testing::TestInfo* test = unit.current_test_info()) {
    label = std::string(test->test_suite_name()) + "." + test->name();
  } else if (const ::testing::TestSuite* suite = unit.current_test_suite()) {
    label = suite->name();
  }
  for (char& c : label) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.';
    if (!plain)
      c = '_';
  }
  return label;
}

// An empty directory `<files::temp_directory()>/<prefix>-<pid>-<Suite.Test>`, made when this is
// constructed (whatever a former process of the same pid left there is removed first) and
// removed, with everything in it, when it is destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix)
      : TempDir(prefix, static_cast<long long>(::getpid()), true) {}

  // One directory for several processes (the ranks of an MPI job): all pass the same `pid`, that
  // of the process that owns the directory, and only the owner (`owner` true) makes and removes
  // it. The others must wait until it exists (tests/mpi/mpi_test.h's SharedTempDir does).
  TempDir(const std::string& prefix, long long pid, bool owner)
      : path_(files::join(files::temp_directory(),
                          prefix + "-" + std::to_string(pid) + "-" + current_test_label())),
        owner_(owner) {
    if (!owner_)
      return;
    files::remove_tree(path_);
    const std::string error = files::create_directories(path_);
    if (!error.empty())
      ADD_FAILURE() << "cannot make the test directory " << path_ << ": " << error;
  }

  ~TempDir() {
    if (owner_)
      files::remove_tree(path_);
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `name` (which may hold '/') inside the directory.
  std::string join(const std::string& name) const { return files::join(path_, name); }

 private:
  std::string path_;
  bool owner_;
};

}  // namespace ocm::test
