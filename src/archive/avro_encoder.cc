// The Avro encoder: libavro's object container writer over a FILE* of our own.
//
// Design note. libavro buffers one block of encoded records in memory (its "datum buffer" of
// block_bytes) and writes it — count, size, (compressed) data, sync marker — when the next
// record does not fit. Two of its behaviours shape this file:
//   - A record that does not fit even an empty block fails *after* writing part of itself into
//     the buffer, and 1.11.1 keeps those bytes: the block of the next record is corrupt. So we
//     measure every record first (avro_value_sizeof), refuse one larger than a block
//     (kTooLarge), and write the block out ourselves (avro_file_writer_sync) before a record
//     that would overflow it: libavro's own overflow path never runs.
//   - avro_file_writer_close() flushes before it frees, and on a write error returns without
//     freeing. Destruction therefore first points the FILE's descriptor at /dev/null: whatever
//     is still pending goes nowhere, close always succeeds and frees everything, and an aborted
//     temp file is never written again.
// The FILE is unbuffered and writes a dup of the writer's descriptor, so the descriptor's
// offset is exactly the bytes on the file; only the pending block is an estimate (see
// size_bytes()). libavro reports errors as return codes plus a message in one process-wide
// buffer (avro_strerror; not thread-local in Debian's build), which writers failing at once on
// several threads may overwrite: I/O errors are therefore described from errno, and
// avro_strerror() is read only for libavro's own (allocation, encoding) failures. None of the
// calls used here aborts on bad input.
//
// Rows (WriterOptions::body_rows): each body is a JSON object, written as a record of its
// columns. The file's schema is the first row's: record "Row" (namespace
// "Orrery.StreamAnalytics"), one field per column in the row's order, named as the column
// with every character outside [A-Za-z0-9_] replaced by '_' (and a leading '_' before a
// digit; a name taken already gets "_2", "_3", …), typed ["null","boolean","long","double",
// "string"] so that a column may change type from row to row; an object or array value is
// written as its JSON text. The header therefore waits for the first row (a file without
// rows gets a record without fields). A row with other columns than the file's is refused
// with kSchemaMismatch and the writer stays usable: the caller starts another file.
#include <avro.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "archive/encoder.h"
#include "archive/errc.h"

namespace orrery::archive::internal {
namespace {

// A block's framing around its data: two varint longs (count, size) and the 16-byte sync.
constexpr uint64_t kBlockFraming = 10 + 10 + 16;

namespace json = boost::json;

// The union every row column is written as, and its branches.
constexpr std::string_view kRowFieldType = R"(["null","boolean","long","double","string"])";
enum RowBranch { kNull = 0, kBoolean, kLong, kDouble, kString };

// An Avro name for column `name`, unique among `taken` (which it joins).
std::string AvroFieldName(std::string_view name, std::vector<std::string>& taken) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  std::string unique = out;
  for (int n = 2; std::find(taken.begin(), taken.end(), unique) != taken.end(); ++n)
    unique = fmt::format("{}_{}", out, n);
  taken.push_back(unique);
  return unique;
}

class AvroEncoder final : public Encoder {
 public:
  AvroEncoder(int fd, std::string path, bool deflate, size_t block_bytes, bool rows)
      : fd_(fd),
        path_(std::move(path)),
        deflate_(deflate),
        block_bytes_(block_bytes),
        rows_(rows) {}

  ~AvroEncoder() override {
    if (writer_) {
      int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (null_fd >= 0) {
        ::dup3(null_fd, ::fileno(fp_), O_CLOEXEC);
        ::close(null_fd);
      }
      avro_file_writer_close(writer_);
    }
    if (fp_) std::fclose(fp_);
    if (has_record_) avro_value_decref(&record_);
    if (iface_) avro_value_iface_decref(iface_);
    if (schema_) avro_schema_decref(schema_);
  }

  Status Init() {
    int dup_fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return IoError("cannot duplicate the descriptor of", path_, errno);
    fp_ = ::fdopen(dup_fd, "wb");
    if (!fp_) {
      int err = errno;
      ::close(dup_fd);
      return IoError("cannot open a stream on", path_, err);
    }
    std::setvbuf(fp_, nullptr, _IONBF, 0);
    if (rows_) return Ok();  // the first row brings the schema
    return CreateWriter(kAvroSchema);
  }

  // Parses `schema`, builds the record and writes the file's header.
  Status CreateWriter(std::string_view schema) {
    if (avro_schema_from_json_length(schema.data(), schema.size(), &schema_) != 0) {
      schema_ = nullptr;
      return AvroError("cannot parse the record schema");
    }
    iface_ = avro_generic_class_from_schema(schema_);
    if (!iface_) return AvroError("cannot build the record class");
    if (avro_generic_value_new(iface_, &record_) != 0) return AvroError("cannot allocate a record");
    has_record_ = true;
    // should_close = 0: we close fp_ ourselves, so its ownership never depends on which
    // failure path libavro took.
    errno = 0;
    if (avro_file_writer_create_with_codec_fp(fp_, path_.c_str(), 0, schema_, &writer_,
                                              deflate_ ? "deflate" : "null", block_bytes_) != 0) {
      writer_ = nullptr;
      return WriteError("cannot write the Avro header of");
    }
    return UpdateFlushed();
  }

  Status Append(const Record& r) override {
    Status status = AppendFilled(r);
    // Never keep the borrowed body past the call.
    if (has_record_) avro_value_reset(&record_);
    return status;
  }

  uint64_t size_bytes() const override {
    if (pending_ == 0) return flushed_;
    uint64_t data = pending_;
    // zlib's deflateBound() for raw deflate: incompressible data grows a little.
    if (deflate_) data += (data >> 12) + (data >> 14) + (data >> 25) + 13;
    return flushed_ + data + kBlockFraming;
  }

  Status Flush() override {
    if (!writer_ && rows_) ORRERY_TRY(CreateWriter(RowSchema({})));
    if (pending_ != 0) ORRERY_TRY(WriteBlock());
    return Ok();
  }

 private:
  Status AppendFilled(const Record& r) {
    ORRERY_TRY(rows_ ? FillRow(r) : Fill(r));
    size_t size = 0;
    if (avro_value_sizeof(&record_, &size) != 0) return AvroError("cannot size a record for");
    if (size > block_bytes_) {
      return Error(Errc::kTooLarge,
                   fmt::format("a record of {} bytes does not fit the Avro block size of {} bytes",
                               size, block_bytes_));
    }
    if (pending_ + size > block_bytes_) ORRERY_TRY(WriteBlock());
    if (avro_file_writer_append_value(writer_, &record_) != 0) {
      return AvroError("cannot append a record to");
    }
    pending_ += size;
    return Ok();
  }

  Error AvroError(std::string_view what) const {
    return Error(Errc::kEncoding, fmt::format("{} {}: {}", what, path_, avro_strerror()));
  }

  // libavro reports a failed fwrite as EIO; errno still holds write(2)'s reason.
  Error WriteError(std::string_view what) const {
    if (errno != 0) return IoError(what, path_, errno);
    return AvroError(what);
  }

  Status UpdateFlushed() {
    off_t offset = ::lseek(fd_, 0, SEEK_CUR);
    if (offset < 0) return IoError("cannot tell the size of", path_, errno);
    flushed_ = static_cast<uint64_t>(offset);
    return Ok();
  }

  Status WriteBlock() {
    errno = 0;
    if (avro_file_writer_sync(writer_) != 0) return WriteError("cannot write an Avro block to");
    pending_ = 0;
    return UpdateFlushed();
  }

  static int SetString(avro_value_t* value, const std::string& s) {
    // libavro's string sizes count the terminating NUL, which std::string provides.
    return avro_value_set_string_len(value, s.c_str(), s.size() + 1);
  }

  static int FillMap(avro_value_t* map, const std::vector<Property>& entries) {
    for (const auto& [key, value] : entries) {
      avro_value_t element;
      if (int rc = avro_value_add(map, key.c_str(), &element, nullptr, nullptr)) return rc;
      if (int rc = SetString(&element, value)) return rc;
    }
    return 0;
  }

  Status Fill(const Record& r) {
    avro_value_t field, branch;
    avro_wrapped_buffer_t body = AVRO_WRAPPED_BUFFER_EMPTY;
    int rc = avro_value_reset(&record_);
    if (!rc) rc = avro_value_get_by_index(&record_, 0, &field, nullptr);
    if (!rc) rc = SetString(&field, r.enqueued_time_utc);
    if (!rc) rc = avro_value_get_by_index(&record_, 1, &field, nullptr);
    if (!rc) rc = FillMap(&field, r.properties);
    if (!rc) rc = avro_value_get_by_index(&record_, 2, &field, nullptr);
    if (!rc) rc = FillMap(&field, r.system_properties);
    if (!rc) rc = avro_value_get_by_index(&record_, 3, &field, nullptr);
    if (!rc) rc = avro_value_set_branch(&field, 1, &branch);
    // The body is not copied: the wrapper borrows the event's bytes until the next reset.
    if (!rc) rc = avro_wrapped_buffer_new(&body, r.body.data(), r.body.size());
    if (!rc) rc = avro_value_give_bytes(&branch, &body);
    if (rc) return AvroError("cannot build a record for");
    return Ok();
  }

  static std::string RowSchema(const std::vector<std::string>& columns) {
    std::vector<std::string> taken;
    std::string fields;
    for (const auto& c : columns) {
      if (!fields.empty()) fields += ',';
      fields += fmt::format(R"({{"name":"{}","type":{}}})", AvroFieldName(c, taken), kRowFieldType);
    }
    return fmt::format(
        R"({{"type":"record","name":"Row","namespace":"Orrery.StreamAnalytics","fields":[{}]}})",
        fields);
  }

  Status FillRow(const Record& r) {
    boost::system::error_code ec;
    json::value row = json::parse(r.body, ec);
    if (ec || !row.is_object()) {
      return Error(Errc::kSchemaMismatch,
                   fmt::format("a row that is not a JSON object cannot be written to {}", path_));
    }
    const json::object& o = row.get_object();
    if (!writer_) {
      for (const auto& kv : o)
        columns_.emplace_back(kv.key());
      ORRERY_TRY(CreateWriter(RowSchema(columns_)));
    }
    bool same = o.size() == columns_.size();
    size_t i = 0;
    for (auto it = o.begin(); same && it != o.end(); ++it, ++i)
      same = it->key() == columns_[i];
    if (!same) {
      return Error(Errc::kSchemaMismatch,
                   fmt::format("a row with other columns than the schema of {}", path_));
    }
    avro_value_t field, branch;
    int rc = avro_value_reset(&record_);
    i = 0;
    for (auto it = o.begin(); !rc && it != o.end(); ++it, ++i) {
      const json::value& v = it->value();
      rc = avro_value_get_by_index(&record_, i, &field, nullptr);
      if (rc) break;
      if (v.is_null()) {
        rc = avro_value_set_branch(&field, kNull, &branch);
        if (!rc) rc = avro_value_set_null(&branch);
      } else if (v.is_bool()) {
        rc = avro_value_set_branch(&field, kBoolean, &branch);
        if (!rc) rc = avro_value_set_boolean(&branch, v.get_bool());
      } else if (v.is_int64()) {
        rc = avro_value_set_branch(&field, kLong, &branch);
        if (!rc) rc = avro_value_set_long(&branch, v.get_int64());
      } else if (v.is_uint64() && v.get_uint64() <= uint64_t{INT64_MAX}) {
        rc = avro_value_set_branch(&field, kLong, &branch);
        if (!rc) rc = avro_value_set_long(&branch, static_cast<int64_t>(v.get_uint64()));
      } else if (v.is_uint64() || v.is_double()) {
        rc = avro_value_set_branch(&field, kDouble, &branch);
        if (!rc) rc = avro_value_set_double(&branch, v.to_number<double>());
      } else {
        std::string text = v.is_string() ? std::string(v.get_string()) : json::serialize(v);
        rc = avro_value_set_branch(&field, kString, &branch);
        if (!rc) rc = SetString(&branch, text);
      }
    }
    if (rc) return AvroError("cannot build a row for");
    return Ok();
  }

  const int fd_;
  const std::string path_;
  const bool deflate_;
  const size_t block_bytes_;
  const bool rows_;
  std::vector<std::string> columns_;  // rows: the file's columns, once the first row came
  avro_schema_t schema_ = nullptr;
  avro_value_iface_t* iface_ = nullptr;
  avro_value_t record_{};
  bool has_record_ = false;
  FILE* fp_ = nullptr;
  avro_file_writer_t writer_ = nullptr;
  uint64_t flushed_ = 0;  // bytes on the file (header and whole blocks)
  uint64_t pending_ = 0;  // encoded bytes in libavro's current block
};

}  // namespace

Result<std::unique_ptr<Encoder>> MakeAvroEncoder(int fd, std::string path, bool deflate,
                                                 size_t block_bytes, bool rows) {
  auto encoder = std::make_unique<AvroEncoder>(fd, std::move(path), deflate, block_bytes, rows);
  ORRERY_TRY(encoder->Init());
  return std::unique_ptr<Encoder>(std::move(encoder));
}

}  // namespace orrery::archive::internal
