#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace orrery::files {
namespace {

Error IoError(std::string_view what, const std::filesystem::path& path, int err) {
  BaseErrc code = err == EACCES || err == EPERM ? BaseErrc::kPermissionDenied
                  : err == ENOENT               ? BaseErrc::kNotFound
                                                : BaseErrc::kIo;
  return Error(code, fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

}  // namespace

Result<std::string> ReadFile(const std::filesystem::path& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open", path, errno);
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return IoError("cannot read", path, err);
    }
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return Error(BaseErrc::kTooLarge,
                   fmt::format("{} is larger than {} bytes", path.string(), max_bytes));
    }
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

Status SyncDirectory(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open directory", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError("cannot fsync directory", path, err);
  return Ok();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms) {
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  auto tmp = dir / (path.filename().string() + ".tmp");
  int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(perms));
  if (fd < 0) return IoError("cannot create", tmp, errno);
  // open() applies the umask; secrets must not depend on it being strict, nor may a lax
  // umask widen them.
  ::fchmod(fd, static_cast<mode_t>(perms));
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return IoError("cannot write", tmp, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return IoError("cannot fsync", tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("cannot rename into", path, err);
  }
  return SyncDirectory(dir);
}

Status EnsureDirectory(const std::filesystem::path& path, std::filesystem::perms perms) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return IoError("cannot create directory", path, ec.value());
  std::filesystem::permissions(path, perms, ec);
  if (ec) return IoError("cannot set permissions on", path, ec.value());
  return Ok();
}

Result<std::vector<std::filesystem::path>> FindFiles(
    const std::vector<std::filesystem::path>& paths, std::string_view extension) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (it->is_regular_file() && it->path().extension() == extension) files.push_back(*it);
      }
      if (ec) {
        return Error(BaseErrc::kInvalidArgument,
                     fmt::format("cannot read {}: {}", p.string(), ec.message()));
      }
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      return Error(BaseErrc::kInvalidArgument,
                   fmt::format("{} is neither a file nor a directory", p.string()));
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace orrery::files
