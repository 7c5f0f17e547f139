#include "archive/batch_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "archive/encoder.h"
#include "archive/errc.h"
#include "base/files.h"

namespace orrery::archive {
namespace fs = std::filesystem;
using internal::IoError;

namespace {

fs::path DirectoryOf(const fs::path& path) {
  return path.parent_path().empty() ? fs::path(".") : path.parent_path();
}

Status SyncDir(const fs::path& dir) {
  if (auto r = files::SyncDirectory(dir); !r) return Error(Errc::kIo, r.error().message());
  return Ok();
}

// Creates the missing directories of `dir`, outermost first, each made durable in its parent
// before the next, so that a file published inside survives a crash with its whole path.
Status EnsureDirectoriesDurable(const fs::path& dir) {
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return Error(Errc::kIo, fmt::format("{} is not a directory", p.string()));
      }
      break;
    }
    if (errno != ENOENT) return IoError("cannot stat", p.string(), errno);
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
      return IoError("cannot create directory", it->string(), errno);
    }
    ORRERY_TRY(SyncDir(DirectoryOf(*it)));
  }
  return Ok();
}

// rename(2) that never replaces `to`: RENAME_NOREPLACE, or link + unlink on file systems
// without it. EEXIST when `to` exists.
int RenameNoReplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  if (::link(from.c_str(), to.c_str()) != 0) return errno;
  ::unlink(from.c_str());
  return 0;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

BatchWriter::BatchWriter(fs::path final_path, Encoding encoding)
    : final_path_(std::move(final_path)),
      temp_path_(final_path_.string() + std::string(kTempSuffix)),
      encoding_(encoding) {}

BatchWriter::~BatchWriter() {
  Abort();
}

Result<std::unique_ptr<BatchWriter>> BatchWriter::Open(const fs::path& final_path,
                                                       const WriterOptions& options) {
  std::string name = final_path.filename().string();
  if (name.empty() || name == "." || name == ".." || EndsWith(name, kTempSuffix)) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("'{}' cannot be a batch file name", final_path.string()));
  }
  if (options.avro_block_bytes < kMinAvroBlockBytes ||
      options.avro_block_bytes > kMaxAvroBlockBytes) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("avro_block_bytes {} is outside {}..{}", options.avro_block_bytes,
                             kMinAvroBlockBytes, kMaxAvroBlockBytes));
  }
  ORRERY_TRY(EnsureDirectoriesDurable(DirectoryOf(final_path)));
  struct stat st {};
  if (::lstat(final_path.c_str(), &st) == 0) {
    return Error(Errc::kAlreadyExists, fmt::format("{} already exists", final_path.string()));
  }
  if (errno != ENOENT) return IoError("cannot stat", final_path.string(), errno);

  std::unique_ptr<BatchWriter> w(new BatchWriter(final_path, options.encoding));
  const std::string temp = w->temp_path_.string();
  auto mode = static_cast<mode_t>(options.perms);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    int err = errno;
    w->state_ = State::kAborted;  // the temp path is not ours: nothing to remove
    if (err == EEXIST) {
      return Error(Errc::kAlreadyExists,
                   fmt::format("{} already exists (another writer, or left by a crash)", temp));
    }
    return IoError("cannot create", temp, err);
  }
  w->fd_ = fd;
  // open() applies the umask; the file gets exactly the requested permissions.
  if (::fchmod(fd, mode) != 0) return IoError("cannot set permissions on", temp, errno);

  if (options.encoding == Encoding::kJson) {
    w->encoder_ = internal::MakeJsonEncoder(fd, temp, options.body_rows);
  } else {
    ORRERY_ASSIGN_OR_RETURN(
        w->encoder_, internal::MakeAvroEncoder(fd, temp, options.encoding == Encoding::kAvroDeflate,
                                               options.avro_block_bytes, options.body_rows));
  }
  return w;
}

Status BatchWriter::Fail(Error error) {
  state_ = State::kFailed;
  failure_ = std::move(error);
  return failure_;
}

Status BatchWriter::Append(const eventlog::Event& event, std::span<const Property> enrichments) {
  if (state_ == State::kFailed) return failure_;
  if (state_ != State::kOpen) {
    return Error(Errc::kClosed, fmt::format("batch {} is closed", final_path_.string()));
  }
  Status status = encoder_->Append(MakeRecord(event, enrichments));
  if (!status) {
    if (status.error().Is(Errc::kTooLarge) || status.error().Is(Errc::kSchemaMismatch)) {
      return status;
    }
    return Fail(status.error());
  }
  ++records_;
  return Ok();
}

uint64_t BatchWriter::size_bytes() const {
  return encoder_ ? encoder_->size_bytes() : final_size_;
}

Status BatchWriter::Finish() {
  if (state_ == State::kFailed) return failure_;
  if (state_ != State::kOpen) {
    return Error(Errc::kClosed, fmt::format("batch {} is closed", final_path_.string()));
  }
  const std::string temp = temp_path_.string();
  if (auto s = encoder_->Flush(); !s) return Fail(s.error());
  if (::fsync(fd_) != 0) return Fail(IoError("cannot fsync", temp, errno));
  final_size_ = encoder_->size_bytes();
  encoder_.reset();
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return Fail(IoError("cannot close", temp, errno));
  if (int err = RenameNoReplace(temp_path_, final_path_)) {
    if (err == EEXIST) {
      return Fail(Error(Errc::kAlreadyExists,
                        fmt::format("cannot publish {}: the file already exists", temp)));
    }
    return Fail(IoError(fmt::format("cannot rename {} to", temp), final_path_.string(), err));
  }
  state_ = State::kFinished;
  // The file is in place; an error here means its directory entry may not be durable yet.
  return SyncDir(DirectoryOf(final_path_));
}

void BatchWriter::Release() {
  encoder_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void BatchWriter::Abort() {
  if (state_ == State::kFinished || state_ == State::kAborted) return;
  Release();
  ::unlink(temp_path_.c_str());
  state_ = State::kAborted;
}

Result<size_t> RemoveStaleTempFiles(const fs::path& root) {
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    if (ec) return IoError("cannot stat", root.string(), ec.value());
    return size_t{0};
  }
  size_t removed = 0;
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    std::error_code status_ec;
    if (entry.symlink_status(status_ec).type() != fs::file_type::regular) continue;
    if (!EndsWith(entry.path().filename().string(), kTempSuffix)) continue;
    if (!fs::remove(entry.path(), status_ec) && status_ec) {
      return IoError("cannot remove", entry.path().string(), status_ec.value());
    }
    ++removed;
  }
  if (ec) return IoError("cannot read directory", root.string(), ec.value());
  return removed;
}

}  // namespace orrery::archive
