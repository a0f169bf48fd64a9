#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/error.h"

namespace ocm::files {

std::string join(const std::string& directory, const std::string& name) {
  if (directory.empty())
    return name;
  if (name.empty())
    return directory;
  return directory.back() == '/' ? directory + name : directory + "/" + name;
}

std::string filename(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/')
    trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  return slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
}

std::string extension(const std::string& path) {
  const std::string name = filename(path);
  const size_t dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? "" : name.substr(dot);
}

std::string parent(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/')
    trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : trimmed.substr(0, slash);
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/')
    return path;
  char cwd[4096];
  return getcwd(cwd, sizeof cwd) != nullptr ? join(cwd, path) : path;
}

bool exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

bool is_directory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

int64_t file_size(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 ? static_cast<int64_t>(info.st_size) : -1;
}

std::string create_directories(const std::string& path) {
  if (path.empty() || is_directory(path))
    return "";
  const std::string above = parent(path);
  if (above != path && above != "." && above != "/") {
    const std::string error = create_directories(above);
    if (!error.empty())
      return error;
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    return std::strerror(errno);
  return is_directory(path) ? "" : "exists and is not a directory";
}

void sync(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

namespace {

// fsync of a file or directory: 0 on success, else the errno of the open or the fsync.
int sync_checked(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return errno;
  const int error = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

[[noreturn]] void fail_write(const std::string& path, const std::string& temporary,
                             const std::string& cause) {
  ::unlink(temporary.c_str());
  throw UserError(path, "could not be written (" + cause + ")",
                  "a writable location with free space");
}

}  // namespace

void write_atomically(const std::string& path,
                      const std::function<void(const std::string&)>& write) {
  const std::string temporary = path + ".tmp";
  try {
    write(temporary);
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  if (const int error = sync_checked(temporary))
    fail_write(path, temporary, std::string("fsync: ") + std::strerror(error));
  if (::rename(temporary.c_str(), path.c_str()) != 0)
    fail_write(path, temporary, std::string("rename: ") + std::strerror(errno));
  // Some filesystems (FUSE, CIFS) cannot fsync a directory at all and say so with EINVAL; the
  // rename is then as durable as they make it. Any other failure is an error.
  const int error = sync_checked(parent(path));
  if (error != 0 && error != EINVAL && error != ENOTSUP && error != ENOSYS)
    throw UserError(
        parent(path),
        "could not be synced after renaming " + filename(path) + " (" + std::strerror(error) + ")",
        "a writable directory");
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& temporary) {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out.flush())
      fail_write(path, temporary, errno != 0 ? std::strerror(errno) : "the stream failed");
  });
}

void remove_tree(const std::string& path) {
  if (!exists(path))
    return;
  nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) {
        ::remove(entry);
        return 0;
      },
      64, FTW_DEPTH | FTW_PHYS);
}

std::vector<Entry> list_directory(const std::string& path) {
  std::vector<Entry> entries;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr)
    return entries;
  while (const dirent* item = ::readdir(dir)) {
    const std::string name = item->d_name;
    if (name == "." || name == "..")
      continue;
    const std::string full = join(path, name);
    entries.push_back({name, is_directory(full), is_regular_file(full)});
  }
  ::closedir(dir);
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

std::string temp_directory() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

}  // namespace ocm::files
