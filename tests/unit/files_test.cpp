#include "common/files.h"

#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::files {
namespace {

TEST(Files, PathPieces) {
  EXPECT_EQ(join("a", "b"), "a/b");
  EXPECT_EQ(join("a/", "b"), "a/b");
  EXPECT_EQ(join("", "b"), "b");
  EXPECT_EQ(filename("/x/y/shard-00001.h5"), "shard-00001.h5");
  EXPECT_EQ(filename("dir/"), "dir");
  EXPECT_EQ(extension("/x/photo.JPEG"), ".JPEG");
  EXPECT_EQ(extension("/x/.hidden"), "");
  EXPECT_EQ(extension("/x.d/noext"), "");
  EXPECT_EQ(parent("/x/y/z"), "/x/y");
  EXPECT_EQ(parent("z"), ".");
  EXPECT_EQ(parent("/z"), "/");
  EXPECT_EQ(absolute("/abs"), "/abs");
  EXPECT_EQ(absolute("rel").front(), '/');
}

TEST(Files, CreateListSizeAndRemoveATree) {
  const test::TempDir tmp("ocm-files-test");
  const std::string root = tmp.join("root");
  ASSERT_EQ(create_directories(join(root, "a/b/c")), "");
  EXPECT_TRUE(is_directory(join(root, "a/b/c")));
  std::ofstream(join(root, "a/z.txt")) << "12345";
  std::ofstream(join(root, "a/m.txt")) << "1";
  EXPECT_EQ(file_size(join(root, "a/z.txt")), 5);
  EXPECT_EQ(file_size(join(root, "a/absent")), -1);
  EXPECT_TRUE(is_regular_file(join(root, "a/m.txt")));
  const auto entries = list_directory(join(root, "a"));
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "b");
  EXPECT_TRUE(entries[0].is_directory);
  EXPECT_EQ(entries[1].name, "m.txt");
  EXPECT_TRUE(entries[2].is_regular_file);
  EXPECT_NE(create_directories(join(root, "a/z.txt/below")), "");  // a file is in the way
  remove_tree(root);
  EXPECT_FALSE(exists(root));
  EXPECT_TRUE(list_directory(root).empty());
}

TEST(Files, AtomicWriteReplacesWholeFilesAndLeavesNoTemporary) {
  const test::TempDir root("ocm-atomic-test");
  const std::string path = root.join("config.yaml");
  write_text_atomically(path, "first\n");
  EXPECT_EQ(test::read_text(path), "first\n");
  write_text_atomically(path, "second, longer\n");
  EXPECT_EQ(test::read_text(path), "second, longer\n");
  EXPECT_FALSE(exists(path + ".tmp"));
}

TEST(Files, AtomicWriteThatFailsKeepsTheOldFile) {
  const test::TempDir root("ocm-atomic-fail");
  const std::string path = root.join("stats.h5");
  write_text_atomically(path, "complete\n");
  // A writer that dies half way: its partial temporary is removed, the old file stays.
  EXPECT_THROW(write_atomically(path,
                                [](const std::string& temporary) {
                                  std::ofstream(temporary) << "half";
                                  throw std::runtime_error("disk gone");
                                }),
               std::runtime_error);
  EXPECT_EQ(test::read_text(path), "complete\n");
  EXPECT_FALSE(exists(path + ".tmp"));
  // A writer that writes nothing cannot be synced: a UserError naming the file.
  test::expect_user_error([&] { write_atomically(path, [](const std::string&) {}); }, {path});
  EXPECT_EQ(test::read_text(path), "complete\n");
  // A directory that does not exist: nothing to rename into.
  EXPECT_THROW(write_text_atomically(root.join("absent/x.json"), "{}"), UserError);
}

}  // namespace
}  // namespace ocm::files
