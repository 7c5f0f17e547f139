// Helpers shared by the archive tests: sample events and a reader of Avro object container
// files built on libavro's own reader (the independent reader is avsc, archive_avsc_test.cc).
#pragma once

#include <avro.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "archive/format.h"
#include "base/files.h"
#include "base/time.h"
#include "eventlog/event_log.h"

namespace orrery::archive::testutil {

// 2019-05-10T06:06:32.722Z, the enqueued time of IoT Hub's documented sample record.
inline int64_t SampleTimeMs() {
  return *timeutil::ParseUtcMs("2019-05-10T06:06:32.722Z");
}

// Every system property set, so every SystemProperties key appears.
inline eventlog::Event FullEvent(std::string body, int64_t enqueued_ms = SampleTimeMs()) {
  eventlog::Event e;
  e.partition = 1;
  e.sequence = 7;
  e.enqueued_ms = enqueued_ms;
  auto& s = e.message.system;
  s.message_id = "msg-1";
  s.correlation_id = "corr-1";
  s.user_id = "user-1";
  s.to = "/devices/dev-1/messages/events";
  s.connection_device_id = "dev-1";
  s.connection_module_id = "mod-1";
  s.connection_auth_method = R"({"scope":"device","type":"sas","issuer":"iothub"})";
  s.connection_auth_generation_id = "636930642531278483";
  s.content_type = "application/json";
  s.content_encoding = "utf-8";
  s.message_source = "Telemetry";
  s.enqueued_time_ms = enqueued_ms;
  e.message.properties = {{"level", "storage"}, {"ünïcode-κλειδί", "värde ✓"}};
  e.message.body = std::move(body);
  return e;
}

// What a reader returns for one record.
struct ReadRecord {
  std::string enqueued_time_utc;
  std::vector<Property> properties;
  std::vector<Property> system_properties;
  std::optional<std::string> body;  // nullopt: the "null" branch
};

inline ReadRecord Expected(const Record& r) {
  return {r.enqueued_time_utc, r.properties, r.system_properties, std::string(r.body)};
}

inline bool operator==(const ReadRecord& a, const ReadRecord& b) {
  return a.enqueued_time_utc == b.enqueued_time_utc && a.properties == b.properties &&
         a.system_properties == b.system_properties && a.body == b.body;
}

// The object container header: metadata entries ("avro.codec", "avro.schema", …).
struct AvroHeader {
  bool valid = false;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string Get(const std::string& key) const {
    for (const auto& [k, v] : metadata)
      if (k == key) return v;
    return {};
  }
};

// Parses "Obj\x01", the metadata map<bytes> and the sync marker by hand (the spec's zig-zag
// varints), independently of libavro's writer.
inline AvroHeader ReadAvroHeader(const std::filesystem::path& path) {
  AvroHeader h;
  auto data = files::ReadFile(path, 64 << 20);
  if (!data) return h;
  const std::string& d = *data;
  size_t pos = 4;
  auto read_long = [&](int64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; pos < d.size() && shift < 64; shift += 7) {
      auto b = static_cast<unsigned char>(d[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) {
        *out = static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
        return true;
      }
    }
    return false;
  };
  auto read_bytes = [&](std::string* out) {
    int64_t n;
    if (!read_long(&n) || n < 0 || pos + static_cast<size_t>(n) > d.size()) return false;
    *out = d.substr(pos, static_cast<size_t>(n));
    pos += static_cast<size_t>(n);
    return true;
  };
  if (d.compare(0, 4, std::string("Obj\x01", 4)) != 0) return h;
  while (true) {
    int64_t count;
    if (!read_long(&count)) return h;
    if (count == 0) break;
    if (count < 0) {
      int64_t block_bytes;
      if (!read_long(&block_bytes)) return h;
      count = -count;
    }
    for (int64_t i = 0; i < count; ++i) {
      std::string key, value;
      if (!read_bytes(&key) || !read_bytes(&value)) return h;
      h.metadata.emplace_back(std::move(key), std::move(value));
    }
  }
  h.valid = pos + 16 <= d.size();
  return h;
}

inline std::vector<Property> ReadMap(avro_value_t* map) {
  std::vector<Property> out;
  size_t n = 0;
  EXPECT_EQ(avro_value_get_size(map, &n), 0);
  for (size_t i = 0; i < n; ++i) {
    avro_value_t element;
    const char* key = nullptr;
    EXPECT_EQ(avro_value_get_by_index(map, i, &element, &key), 0);
    const char* s = nullptr;
    size_t size = 0;
    EXPECT_EQ(avro_value_get_string(&element, &s, &size), 0);
    out.emplace_back(key, std::string(s, size - 1));  // sizes count the NUL
  }
  return out;
}

// Every record of the file, read with libavro. ADD_FAILUREs on any error; a file with no
// blocks yields none (libavro's reader cannot open one, so the header is checked instead).
inline std::vector<ReadRecord> ReadAvroRecords(const std::filesystem::path& path, size_t expected) {
  std::vector<ReadRecord> out;
  if (expected == 0) {
    EXPECT_TRUE(ReadAvroHeader(path).valid) << path;
    return out;
  }
  avro_file_reader_t reader = nullptr;
  if (avro_file_reader(path.c_str(), &reader) != 0) {
    ADD_FAILURE() << "libavro cannot open " << path << ": " << avro_strerror();
    return out;
  }
  avro_schema_t schema = avro_file_reader_get_writer_schema(reader);
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  avro_value_t record;
  avro_generic_value_new(iface, &record);
  for (size_t i = 0; i < expected; ++i) {
    if (avro_file_reader_read_value(reader, &record) != 0) {
      ADD_FAILURE() << "record " << i << " of " << path << ": " << avro_strerror();
      break;
    }
    ReadRecord r;
    avro_value_t field, branch;
    const char* s = nullptr;
    size_t size = 0;
    avro_value_get_by_index(&record, 0, &field, nullptr);
    avro_value_get_string(&field, &s, &size);
    r.enqueued_time_utc.assign(s, size - 1);
    avro_value_get_by_index(&record, 1, &field, nullptr);
    r.properties = ReadMap(&field);
    avro_value_get_by_index(&record, 2, &field, nullptr);
    r.system_properties = ReadMap(&field);
    avro_value_get_by_index(&record, 3, &field, nullptr);
    int discriminant = -1;
    avro_value_get_discriminant(&field, &discriminant);
    if (discriminant == 1) {
      avro_value_get_current_branch(&field, &branch);
      const void* bytes = nullptr;
      avro_value_get_bytes(&branch, &bytes, &size);
      r.body = size ? std::string(static_cast<const char*>(bytes), size) : std::string();
    }
    out.push_back(std::move(r));
    avro_value_reset(&record);
  }
  EXPECT_NE(avro_file_reader_read_value(reader, &record), 0) << "more records than expected";
  avro_value_decref(&record);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
  avro_file_reader_close(reader);
  return out;
}

// Every record of a file as libavro's JSON encoding (unions as {"type": value}), with the
// writer's schema as JSON: rows files (WriterOptions::body_rows).
struct AvroRows {
  std::string schema;
  std::vector<std::string> rows;
};
inline AvroRows ReadAvroRows(const std::filesystem::path& path) {
  AvroRows out;
  avro_file_reader_t reader = nullptr;
  if (avro_file_reader(path.c_str(), &reader) != 0) {
    ADD_FAILURE() << "libavro cannot open " << path << ": " << avro_strerror();
    return out;
  }
  avro_schema_t schema = avro_file_reader_get_writer_schema(reader);
  char buffer[4096];
  avro_writer_t writer = avro_writer_memory(buffer, sizeof(buffer));
  if (avro_schema_to_json(schema, writer) == 0) {
    out.schema.assign(buffer, static_cast<size_t>(avro_writer_tell(writer)));
  }
  avro_writer_free(writer);
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  avro_value_t record;
  avro_generic_value_new(iface, &record);
  while (avro_file_reader_read_value(reader, &record) == 0) {
    char* text = nullptr;
    if (avro_value_to_json(&record, 1, &text) == 0) {
      out.rows.emplace_back(text);
      free(text);  // NOLINT: allocated by libavro
    }
    avro_value_reset(&record);
  }
  avro_value_decref(&record);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
  avro_file_reader_close(reader);
  return out;
}

}  // namespace orrery::archive::testutil
