// Internal to the archive: an encoder streams records of one encoding into a file descriptor
// that BatchWriter owns (and fsyncs, renames and closes). libavro's headers stay in
// avro_encoder.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "archive/format.h"
#include "base/error.h"

namespace orrery::archive::internal {

// Not thread-safe. After an error other than kTooLarge the encoder is unusable (the writer
// fails); destroying it never writes to the file again, so an aborted file is left alone.
class Encoder {
 public:
  virtual ~Encoder() = default;
  // Encodes one record, writing whole blocks (Avro) or buffered lines (JSON) as they fill.
  // kTooLarge (nothing written; the encoder stays usable) for a record beyond the Avro block.
  virtual Status Append(const Record& record) = 0;
  // An upper bound of the file's size once Flush() has run (exact for JSON).
  virtual uint64_t size_bytes() const = 0;
  // Writes everything appended so far to the file descriptor.
  virtual Status Flush() = 0;
};

// `fd` must stay open for the encoder's lifetime; `path` names the file in messages.
// `body_rows`: each line is the record's body (WriterOptions::body_rows).
std::unique_ptr<Encoder> MakeJsonEncoder(int fd, std::string path, bool body_rows = false);
// Writes the object container header at once (codec "deflate" when `deflate`, else "null"),
// or with `rows` (WriterOptions::body_rows) at the first row, whose columns make the schema.
// `block_bytes` bounds the uncompressed block buffered in memory and so the largest record.
Result<std::unique_ptr<Encoder>> MakeAvroEncoder(int fd, std::string path, bool deflate,
                                                 size_t block_bytes, bool rows = false);

// Writes all of `data` to `fd` (retrying EINTR and short writes); kIo naming `path`.
Status WriteAll(int fd, std::string_view data, const std::string& path);
// kIo for the operation `what` on `path` with errno `err`.
Error IoError(std::string_view what, const std::string& path, int err);

}  // namespace orrery::archive::internal
