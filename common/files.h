#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ocm::files {

// Note [no std::filesystem]
// PyTorch's Linux wheels export statically linked copies of libstdc++'s std::filesystem (PyTorch
// issue 133437), and a binary linked against such a LibTorch can call into them: on a GPU host
// std::filesystem::remove_all jumped to address 0. PyTorch itself stopped using <filesystem> on
// Linux for this reason. Every library and tool that links LibTorch uses these POSIX-based
// helpers instead.

std::string join(const std::string& directory, const std::string& name);
std::string filename(const std::string& path);   // last component
std::string extension(const std::string& path);  // ".png", or "" when there is none
std::string parent(const std::string& path);     // "." for a bare name
std::string absolute(const std::string& path);   // relative paths are joined to the cwd

bool exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
int64_t file_size(const std::string& path);  // -1 when it cannot be read

// "" on success, else what went wrong (strerror text).
std::string create_directories(const std::string& path);

// fsync of a file or a directory (a directory, to make renames inside it durable); best effort.
void sync(const std::string& path);

// Note [atomic write]
// Every file a run leaves behind (checkpoints, manifests, statistics, samples, images, configs,
// analytic tables) is written the same way: into `<path>.tmp`, which is fsynced, renamed onto
// `path`, and then the directory is fsynced so the rename itself survives a crash. A reader
// therefore sees either the old file or the complete new one, never a torn one. `write` fills
// the temporary path (any library may do it: HDF5, stb, a stream). When writing, the fsync or
// the rename fails, the temporary file is removed, UserError names `path` and the cause, and an
// existing `path` is left as it was. A directory that cannot be fsynced after the rename is an
// error too, except on filesystems that do not support it (EINVAL, ENOTSUP, ENOSYS).
void write_atomically(const std::string& path,
                      const std::function<void(const std::string&)>& write);
void write_text_atomically(const std::string& path, const std::string& text);

// Removes a file or a whole tree if it exists; best effort (used for cleanup).
void remove_tree(const std::string& path);

struct Entry {
  std::string name;
  bool is_directory;
  bool is_regular_file;
};
// The entries of a directory except . and .., sorted by name; empty when it cannot be read.
std::vector<Entry> list_directory(const std::string& path);

std::string temp_directory();  // $TMPDIR, else /tmp

}  // namespace ocm::files
