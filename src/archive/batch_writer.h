// The storage endpoint's batch file writer: one file of IoT Hub's storage format (format.h)
// per batch, which appears under its final name only once it is complete and durable.
//
// Life of a batch. Open() creates any missing directories of the final path (each made
// durable in its parent) and the temp file "<final path>.tmp" beside it (O_EXCL). Append()
// streams records into it: the JSON encoding buffers at most 64 KiB of lines, the Avro one a
// single block (WriterOptions::avro_block_bytes) before writing it out; memory never grows
// with the batch. size_bytes() lets the caller roll at its maximum chunk size. Finish() writes
// what is pending, fsyncs the file, renames it to its final name — never replacing an existing
// file — and fsyncs the directory. Abort(), or destroying an unfinished writer, removes the
// temp file. A crash leaves only "*.tmp" files: RemoveStaleTempFiles() clears them at start-up.
//
// Errors. kTooLarge and kSchemaMismatch refuse one record and leave the writer usable. Any other
// error of Append() or Finish() fails the writer: later calls return that error again until
// Abort().
//
// Threads: a BatchWriter is not thread-safe (one thread at a time). Its calls block on disk
// I/O (Finish() fsyncs): call them from a blocking thread, never from an I/O context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "archive/format.h"
#include "base/error.h"
#include "eventlog/event_log.h"

namespace orrery::archive {

namespace internal {
class Encoder;
}

// The suffix of a batch's temp file; final names never end with it.
inline constexpr std::string_view kTempSuffix = ".tmp";

struct WriterOptions {
  Encoding encoding = Encoding::kAvro;
  // Each record is the message body itself instead of its routing record — for bodies that
  // are one JSON object each (Stream Analytics rows). JSON: a line per row (ASA's
  // line-separated JSON). Avro: a record of the row's columns, the schema the first row's
  // (avro_encoder.cc); Append() refuses a row with other columns with kSchemaMismatch.
  bool body_rows = false;
  // Avro: the uncompressed block libavro holds in memory before writing it, and so the
  // largest record accepted (a larger one gets kTooLarge). The default fits the event log's
  // default 1 MiB records with room for the record's field names. 64 KiB..64 MiB.
  size_t avro_block_bytes = 2 << 20;
  // Of the final file (and of the temp file while it is written).
  std::filesystem::perms perms =
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
      std::filesystem::perms::group_read | std::filesystem::perms::others_read;
};

inline constexpr size_t kMinAvroBlockBytes = 64 << 10;
inline constexpr size_t kMaxAvroBlockBytes = 64 << 20;

class BatchWriter {
 public:
  // Starts a batch that Finish() will publish at `final_path`. kInvalidArgument for an
  // empty name, a name ending in kTempSuffix or options out of bounds; kAlreadyExists when
  // the final file or the temp file exists (another writer, or a crash not yet cleaned up);
  // kIo when a directory or the file cannot be created.
  static Result<std::unique_ptr<BatchWriter>> Open(const std::filesystem::path& final_path,
                                                   const WriterOptions& options = {});
  // Abort()s unless Finish() succeeded.
  ~BatchWriter();
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Appends the record of `event` (format.h), with `enrichments` added to its properties.
  // kClosed after Finish() or Abort().
  Status Append(const eventlog::Event& event, std::span<const Property> enrichments = {});

  // An upper bound of the final file's size if Finish() ran now (exact for JSON; for Avro the
  // header and written blocks are exact and the pending block is bounded from above); the
  // exact size once Finish() has flushed.
  uint64_t size_bytes() const;
  // Records appended so far.
  uint64_t records() const { return records_; }

  // Publishes the file durably (see above). A batch without records is published too: an
  // Avro file with only its header, or an empty JSON file. kAlreadyExists when a file took the
  // final name meanwhile (the temp file stays until Abort()); kClosed when already done.
  Status Finish();
  // Removes the temp file and releases everything; idempotent; a no-op after Finish().
  void Abort();

  const std::filesystem::path& final_path() const { return final_path_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  Encoding encoding() const { return encoding_; }

 private:
  enum class State { kOpen, kFailed, kFinished, kAborted };
  BatchWriter(std::filesystem::path final_path, Encoding encoding);
  Status Fail(Error error);
  void Release();  // closes the encoder and the descriptor

  const std::filesystem::path final_path_;
  const std::filesystem::path temp_path_;
  const Encoding encoding_;
  State state_ = State::kOpen;
  Error failure_;  // when kFailed
  int fd_ = -1;
  std::unique_ptr<internal::Encoder> encoder_;
  uint64_t records_ = 0;
  uint64_t final_size_ = 0;  // once Finish() flushed
};

// Removes every regular file named "*<kTempSuffix>" below `root` (symbolic links are not
// followed) and returns how many it removed; 0 when `root` does not exist. kIo when the tree
// cannot be read.
// REQUIRES: no BatchWriter is open below `root` (call at start-up).
Result<size_t> RemoveStaleTempFiles(const std::filesystem::path& root);

}  // namespace orrery::archive
