#include "common/files.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

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
  const std::string root = join(temp_directory(), "ocm-files-test-" + std::to_string(::getpid()));
  remove_tree(root);
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

}  // namespace
}  // namespace ocm::files
