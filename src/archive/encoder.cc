#include "archive/encoder.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "archive/errc.h"

namespace orrery::archive::internal {
namespace {

// Lines are gathered up to this many bytes and then written with one write(2).
constexpr size_t kJsonFlushBytes = 64 << 10;

class JsonEncoder final : public Encoder {
 public:
  JsonEncoder(int fd, std::string path, bool body_rows)
      : fd_(fd), path_(std::move(path)), body_rows_(body_rows) {}

  Status Append(const Record& record) override {
    if (body_rows_) {
      // One line per record whatever the body holds (JSON has line breaks only between
      // tokens, where a space means the same).
      size_t from = buffer_.size();
      buffer_ += SanitizeUtf8(record.body);
      std::replace_if(
          buffer_.begin() + static_cast<std::ptrdiff_t>(from), buffer_.end(),
          [](char c) { return c == '\n' || c == '\r'; }, ' ');
      buffer_ += '\n';
    } else {
      AppendJsonLine(record, &buffer_);
    }
    if (buffer_.size() >= kJsonFlushBytes) return Flush();
    return Ok();
  }

  uint64_t size_bytes() const override { return written_ + buffer_.size(); }

  Status Flush() override {
    ORRERY_TRY(WriteAll(fd_, buffer_, path_));
    written_ += buffer_.size();
    buffer_.clear();
    return Ok();
  }

 private:
  const int fd_;
  const std::string path_;
  const bool body_rows_;
  std::string buffer_;  // at most kJsonFlushBytes plus one line
  uint64_t written_ = 0;
};

}  // namespace

Error IoError(std::string_view what, const std::string& path, int err) {
  return Error(Errc::kIo, fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

std::unique_ptr<Encoder> MakeJsonEncoder(int fd, std::string path, bool body_rows) {
  return std::make_unique<JsonEncoder>(fd, std::move(path), body_rows);
}

}  // namespace orrery::archive::internal
