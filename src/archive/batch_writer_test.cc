#include "archive/batch_writer.h"

#include <sys/stat.h>

#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "archive/errc.h"
#include "archive/test_util.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "test/support/process.h"

namespace orrery::archive {
namespace {

namespace fs = std::filesystem;
using testutil::AvroHeader;
using testutil::FullEvent;
using testutil::ReadAvroHeader;
using testutil::ReadAvroRecords;
using testutil::ReadRecord;

std::string AllByteValues() {
  std::string s;
  for (int i = 0; i < 256; ++i)
    s.push_back(static_cast<char>(i));
  return s;
}

// A binary body, a JSON body, an empty one, and one without any system property.
std::vector<eventlog::Event> SampleEvents() {
  std::vector<eventlog::Event> events;
  events.push_back(FullEvent(AllByteValues()));
  events.back().message.system.content_type = "application/octet-stream";
  events.push_back(FullEvent(R"({"temperature": 21.5, "text": "ünïcode ✓"})"));
  events.push_back(FullEvent(""));
  eventlog::Event bare;
  bare.enqueued_ms = testutil::SampleTimeMs() + 1;
  bare.message.body = "bare";
  events.push_back(bare);
  return events;
}

const std::vector<Property> kEnrichments = {{"myIotHub", "ContosoTestHub"},
                                            {"DeviceLocation", "Plant 43"}};

uint64_t FileSize(const fs::path& p) {
  return fs::file_size(p);
}

std::string Str(const boost::json::value& v) {
  const auto& s = v.as_string();
  return std::string(s.data(), s.size());
}

std::unique_ptr<BatchWriter> OpenOrDie(const fs::path& path, WriterOptions options = {}) {
  auto w = BatchWriter::Open(path, options);
  EXPECT_TRUE(w) << (w ? "" : w.error().message());
  return w ? std::move(*w) : nullptr;
}

void WriteAll(BatchWriter& w, const std::vector<eventlog::Event>& events) {
  for (const auto& e : events)
    ASSERT_TRUE(w.Append(e, kEnrichments));
}

class BatchWriterTest : public ::testing::TestWithParam<Encoding> {
 protected:
  orrery::testing::TempDir dir_{"archive"};
};

TEST(BatchWriterAvroTest, RecordsReadBackFieldByFieldWithLibavro) {
  orrery::testing::TempDir dir("archive");
  fs::path path = dir.path() / "hub/0/2019/05/10/06/06.avro";
  auto w = OpenOrDie(path);
  ASSERT_TRUE(w);
  auto events = SampleEvents();
  WriteAll(*w, events);
  EXPECT_EQ(w->records(), events.size());
  ASSERT_TRUE(w->Finish());

  AvroHeader header = ReadAvroHeader(path);
  ASSERT_TRUE(header.valid);
  EXPECT_EQ(header.Get("avro.codec"), "null");  // IoT Hub's "avro" encoding
  avro_schema_t written = nullptr, expected = nullptr;
  std::string schema = header.Get("avro.schema");
  ASSERT_EQ(avro_schema_from_json_length(schema.data(), schema.size(), &written), 0) << schema;
  ASSERT_EQ(avro_schema_from_json_length(kAvroSchema.data(), kAvroSchema.size(), &expected), 0);
  EXPECT_TRUE(avro_schema_equal(written, expected)) << schema;
  EXPECT_STREQ(avro_schema_name(written), "Message");
  EXPECT_STREQ(avro_schema_namespace(written), "Microsoft.Azure.Devices");
  avro_schema_decref(written);
  avro_schema_decref(expected);

  auto records = ReadAvroRecords(path, events.size());
  ASSERT_EQ(records.size(), events.size());
  // The first record spelled out; the others against the normalised record.
  const ReadRecord& r = records[0];
  EXPECT_EQ(r.enqueued_time_utc, "2019-05-10T06:06:32.7220000Z");
  EXPECT_EQ(r.properties, (std::vector<Property>{{"level", "storage"},
                                                 {"ünïcode-κλειδί", "värde ✓"},
                                                 {"myIotHub", "ContosoTestHub"},
                                                 {"DeviceLocation", "Plant 43"}}));
  ASSERT_EQ(r.system_properties.size(), 11u);
  EXPECT_EQ(r.system_properties.front(), (Property{"messageId", "msg-1"}));
  EXPECT_EQ(r.system_properties[8], (Property{"contentType", "application/octet-stream"}));
  EXPECT_EQ(r.system_properties.back(), (Property{"enqueuedTime", "2019-05-10T06:06:32.7220000Z"}));
  EXPECT_EQ(r.body, AllByteValues());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(records[i], testutil::Expected(MakeRecord(events[i], kEnrichments))) << i;
  }
  EXPECT_EQ(records[2].body, std::string());  // an empty body is bytes, not null
  EXPECT_TRUE(records[3].system_properties ==
              (std::vector<Property>{{"enqueuedTime", "2019-05-10T06:06:32.7230000Z"}}));
}

TEST(BatchWriterAvroTest, DeflateCodecCompressesAndReadsBack) {
  orrery::testing::TempDir dir("archive");
  std::vector<eventlog::Event> events;
  for (int i = 0; i < 200; ++i)
    events.push_back(FullEvent(std::string(1000, 'a' + i % 3)));
  uint64_t sizes[2];
  for (Encoding encoding : {Encoding::kAvro, Encoding::kAvroDeflate}) {
    fs::path path = dir.path() / (std::string(EncodingName(encoding)) + ".avro");
    auto w = OpenOrDie(path, {.encoding = encoding, .avro_block_bytes = 64 << 10});
    ASSERT_TRUE(w);
    WriteAll(*w, events);
    ASSERT_TRUE(w->Finish());
    EXPECT_EQ(ReadAvroHeader(path).Get("avro.codec"),
              encoding == Encoding::kAvro ? "null" : "deflate");
    auto records = ReadAvroRecords(path, events.size());
    ASSERT_EQ(records.size(), events.size());
    EXPECT_EQ(records[199], testutil::Expected(MakeRecord(events[199], kEnrichments)));
    sizes[encoding == Encoding::kAvro ? 0 : 1] = FileSize(path);
  }
  EXPECT_LT(sizes[1] * 5, sizes[0]);
}

TEST(BatchWriterAvroTest, RowsAreRecordsOfTheirColumnsWithTheFirstRowsSchema) {
  orrery::testing::TempDir dir("archive");
  fs::path path = dir.path() / "rows.avro";
  auto w = OpenOrDie(path, {.encoding = Encoding::kAvro, .body_rows = true});
  ASSERT_TRUE(w);
  auto row = [](std::string body) { return FullEvent(std::move(body)); };
  ASSERT_TRUE(w->Append(row(
      R"({"deviceId":"d-1","n":3,"avg temp":21.5,"ok":true,"tags":["a",{"b":1}],"x":null,"2nd":10000000000000000000})")));
  // Same columns, other types: the union takes them.
  ASSERT_TRUE(w->Append(
      row(R"({"deviceId":7,"n":"three","avg temp":null,"ok":false,"tags":{},"x":1.25,"2nd":-1})")));
  // Other columns, or not an object: refused, the writer goes on.
  auto other = w->Append(row(R"({"deviceId":"d-2","n":4})"));
  ASSERT_FALSE(other);
  EXPECT_TRUE(other.error().Is(Errc::kSchemaMismatch)) << other.error().message();
  auto reordered = w->Append(
      row(R"({"n":3,"deviceId":"d-1","avg temp":1,"ok":true,"tags":[],"x":null,"2nd":0})"));
  EXPECT_TRUE(!reordered && reordered.error().Is(Errc::kSchemaMismatch));
  auto scalar = w->Append(row("42"));
  EXPECT_TRUE(!scalar && scalar.error().Is(Errc::kSchemaMismatch));
  EXPECT_EQ(w->records(), 2u);
  ASSERT_TRUE(w->Finish());

  auto read = testutil::ReadAvroRows(path);
  auto schema = boost::json::parse(read.schema);
  EXPECT_EQ(Str(schema.at("name")), "Row");
  EXPECT_EQ(Str(schema.at("namespace")), "Orrery.StreamAnalytics");
  std::vector<std::string> names;
  for (const auto& f : schema.at("fields").as_array()) {
    names.push_back(Str(f.at("name")));
    // libavro writes a primitive in a union as {"type": name}.
    std::vector<std::string> branches;
    for (const auto& b : f.at("type").as_array())
      branches.push_back(b.is_string() ? Str(b) : Str(b.at("type")));
    EXPECT_EQ(branches, (std::vector<std::string>{"null", "boolean", "long", "double", "string"}));
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"deviceId", "n", "avg_temp", "ok", "tags", "x", "_2nd"}));
  ASSERT_EQ(read.rows.size(), 2u);
  EXPECT_EQ(
      boost::json::parse(read.rows[0]),
      boost::json::parse(
          R"({"deviceId":{"string":"d-1"},"n":{"long":3},"avg_temp":{"double":21.5},"ok":{"boolean":true},"tags":{"string":"[\"a\",{\"b\":1}]"},"x":null,"_2nd":{"double":1E19}})"));
  EXPECT_EQ(
      boost::json::parse(read.rows[1]),
      boost::json::parse(
          R"({"deviceId":{"long":7},"n":{"string":"three"},"avg_temp":null,"ok":{"boolean":false},"tags":{"string":"{}"},"x":{"double":1.25},"_2nd":{"long":-1}})"));
}

TEST(BatchWriterAvroTest, RowsFileWithoutRowsIsValidAndColumnNamesStayUnique) {
  orrery::testing::TempDir dir("archive");
  auto empty =
      OpenOrDie(dir.path() / "empty.avro", {.encoding = Encoding::kAvro, .body_rows = true});
  ASSERT_TRUE(empty);
  ASSERT_TRUE(empty->Finish());
  auto none = testutil::ReadAvroRows(dir.path() / "empty.avro");
  EXPECT_TRUE(none.rows.empty());
  auto empty_schema = boost::json::parse(none.schema);
  EXPECT_TRUE(empty_schema.at("fields").as_array().empty());

  auto w =
      OpenOrDie(dir.path() / "names.avro", {.encoding = Encoding::kAvroDeflate, .body_rows = true});
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(FullEvent(R"({"a b":1,"a_b":2,"a-b":3,"":4})")));
  ASSERT_TRUE(w->Finish());
  auto read = testutil::ReadAvroRows(dir.path() / "names.avro");
  std::vector<std::string> names;
  auto schema = boost::json::parse(read.schema);
  for (const auto& f : schema.at("fields").as_array())
    names.push_back(Str(f.at("name")));
  EXPECT_EQ(names, (std::vector<std::string>{"a_b", "a_b_2", "a_b_3", "_"}));
  ASSERT_EQ(read.rows.size(), 1u);
}

TEST(BatchWriterJsonTest, OneIotHubRecordPerLine) {
  orrery::testing::TempDir dir("archive");
  fs::path path = dir.path() / "hub/0/2019/05/10/06/06.json";
  auto w = OpenOrDie(path, {.encoding = Encoding::kJson});
  ASSERT_TRUE(w);
  auto events = SampleEvents();
  WriteAll(*w, events);
  ASSERT_TRUE(w->Finish());

  std::string expected;
  for (const auto& e : events)
    AppendJsonLine(MakeRecord(e, kEnrichments), &expected);
  auto content = files::ReadFile(path);
  ASSERT_TRUE(content);
  EXPECT_EQ(*content, expected);

  auto lines = strings::Split(*content, '\n');
  ASSERT_EQ(lines.size(), events.size() + 1);  // each line ends with "\n"
  auto binary = boost::json::parse(lines[0]);
  EXPECT_EQ(Str(binary.at("Body")), crypto::Base64Encode(AllByteValues()));
  EXPECT_EQ(Str(binary.at("Properties").at("myIotHub")), "ContosoTestHub");
  EXPECT_EQ(Str(binary.at("SystemProperties").at("connectionDeviceId")), "dev-1");
  auto inline_json = boost::json::parse(lines[1]);
  EXPECT_EQ(Str(inline_json.at("Body").at("text")), "ünïcode ✓");
  EXPECT_EQ(Str(boost::json::parse(lines[3]).at("Body")), crypto::Base64Encode("bare"));
}

TEST_P(BatchWriterTest, AppearsUnderItsFinalNameOnlyAfterFinish) {
  fs::path path = dir_.path() / "a/b/c/batch" += FileExtension(GetParam());
  auto w = OpenOrDie(path, {.encoding = GetParam()});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->temp_path(), fs::path(path.string() + ".tmp"));
  EXPECT_TRUE(fs::exists(w->temp_path()));
  WriteAll(*w, SampleEvents());
  EXPECT_FALSE(fs::exists(path));
  ASSERT_TRUE(w->Finish());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(w->temp_path()));
  EXPECT_EQ(FileSize(path), w->size_bytes());

  auto again = w->Finish();
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().Is(Errc::kClosed));
  auto late = w->Append(SampleEvents()[0]);
  ASSERT_FALSE(late);
  EXPECT_TRUE(late.error().Is(Errc::kClosed));
  w.reset();  // destroying a finished writer keeps its file
  EXPECT_TRUE(fs::exists(path));
}

TEST_P(BatchWriterTest, AbortAndDestructionLeaveNothing) {
  fs::path path = dir_.path() / "batch" += FileExtension(GetParam());
  {
    auto w = OpenOrDie(path, {.encoding = GetParam()});
    ASSERT_TRUE(w);
    WriteAll(*w, SampleEvents());
    w->Abort();
    EXPECT_FALSE(fs::exists(w->temp_path()));
    EXPECT_TRUE(w->Append(SampleEvents()[0]).error().Is(Errc::kClosed));
    w->Abort();  // idempotent
  }
  {
    auto w = OpenOrDie(path, {.encoding = GetParam()});
    ASSERT_TRUE(w);
    WriteAll(*w, SampleEvents());
  }  // destroyed unfinished
  EXPECT_TRUE(fs::is_empty(dir_.path())) << "left " << fs::directory_iterator(dir_.path())->path();
}

TEST_P(BatchWriterTest, SizeTracksTheFileAndBoundsIt) {
  fs::path path = dir_.path() / "batch" += FileExtension(GetParam());
  WriterOptions options{.encoding = GetParam(), .avro_block_bytes = kMinAvroBlockBytes};
  auto w = OpenOrDie(path, options);
  ASSERT_TRUE(w);
  std::mt19937 rng(7);
  uint64_t last = w->size_bytes();
  if (GetParam() == Encoding::kJson) {
    EXPECT_EQ(last, 0u);
  } else {
    EXPECT_EQ(last, FileSize(w->temp_path()));  // the header
  }
  for (int i = 0; i < 300; ++i) {
    std::string body(1000 + rng() % 3000, '\0');
    for (char& c : body)
      c = static_cast<char>(rng());
    ASSERT_TRUE(w->Append(FullEvent(body)));
    uint64_t size = w->size_bytes();
    // Deflate's estimate of the pending block is a bound that drops when the block is written.
    if (GetParam() != Encoding::kAvroDeflate) {
      EXPECT_GT(size, last);
    }
    last = size;
    // Streamed, not buffered: what is not yet on disk is at most one block (or 64 KiB of lines).
    uint64_t on_disk = FileSize(w->temp_path());
    EXPECT_LE(on_disk, size);
    EXPECT_LE(size - on_disk, kMinAvroBlockBytes + 36 + (kMinAvroBlockBytes >> 11) + 13 + 8000);
  }
  ASSERT_TRUE(w->Finish());
  EXPECT_LE(FileSize(path), last);
  EXPECT_EQ(FileSize(path), w->size_bytes());
  if (GetParam() != Encoding::kAvroDeflate) {
    EXPECT_GE(FileSize(path) + 36, last);
  }
  if (GetParam() != Encoding::kJson) {
    EXPECT_EQ(ReadAvroRecords(path, 300).size(), 300u);
  }
}

TEST_P(BatchWriterTest, EmptyBatchIsAValidFile) {
  fs::path path = dir_.path() / "empty" += FileExtension(GetParam());
  auto w = OpenOrDie(path, {.encoding = GetParam()});
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Finish());
  if (GetParam() == Encoding::kJson) {
    EXPECT_EQ(FileSize(path), 0u);
  } else {
    EXPECT_TRUE(ReadAvroHeader(path).valid);
    EXPECT_EQ(FileSize(path), w->size_bytes());
  }
}

TEST_P(BatchWriterTest, NeverReplacesAFile) {
  fs::path path = dir_.path() / "batch" += FileExtension(GetParam());
  ASSERT_TRUE(files::WriteFileAtomic(path, "precious"));
  auto refused = BatchWriter::Open(path, {.encoding = GetParam()});
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().Is(Errc::kAlreadyExists));

  // Another process publishes the same name while this batch is open.
  fs::path other = dir_.path() / "other" += FileExtension(GetParam());
  auto w = OpenOrDie(other, {.encoding = GetParam()});
  ASSERT_TRUE(w);
  WriteAll(*w, SampleEvents());
  std::ofstream(other) << "precious";
  auto finished = w->Finish();
  ASSERT_FALSE(finished);
  EXPECT_TRUE(finished.error().Is(Errc::kAlreadyExists)) << finished.error().message();
  EXPECT_EQ(*files::ReadFile(other), "precious");
  EXPECT_TRUE(w->Finish().error().Is(Errc::kAlreadyExists));  // the writer has failed
  w->Abort();
  EXPECT_FALSE(fs::exists(w->temp_path()));
  EXPECT_EQ(*files::ReadFile(other), "precious");
}

TEST_P(BatchWriterTest, TempFileOfAnotherWriterIsLeftAlone) {
  fs::path path = dir_.path() / "batch" += FileExtension(GetParam());
  auto first = OpenOrDie(path, {.encoding = GetParam()});
  ASSERT_TRUE(first);
  auto second = BatchWriter::Open(path, {.encoding = GetParam()});
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().Is(Errc::kAlreadyExists));
  EXPECT_TRUE(fs::exists(first->temp_path()));
  WriteAll(*first, SampleEvents());
  EXPECT_TRUE(first->Finish());
}

TEST_P(BatchWriterTest, FileGetsTheRequestedPermissions) {
  fs::path path = dir_.path() / "secret" += FileExtension(GetParam());
  auto w = OpenOrDie(path, {.encoding = GetParam(), .perms = files::kSecretPerms});
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Finish());
  EXPECT_EQ(fs::status(path).permissions(), files::kSecretPerms);
}

TEST_P(BatchWriterTest, BadNamesAndOptionsAreRefused) {
  for (const fs::path& path : {dir_.path() / "x.avro.tmp", dir_.path() / "", fs::path("")}) {
    auto w = BatchWriter::Open(path, {.encoding = GetParam()});
    ASSERT_FALSE(w) << path;
    EXPECT_TRUE(w.error().Is(Errc::kInvalidArgument)) << path;
  }
  for (size_t block : {kMinAvroBlockBytes - 1, kMaxAvroBlockBytes + 1}) {
    auto w =
        BatchWriter::Open(dir_.path() / "x", {.encoding = GetParam(), .avro_block_bytes = block});
    ASSERT_FALSE(w);
    EXPECT_TRUE(w.error().Is(Errc::kInvalidArgument));
  }
  ASSERT_TRUE(files::WriteFileAtomic(dir_.path() / "file", ""));
  auto under_file = BatchWriter::Open(dir_.path() / "file/x", {.encoding = GetParam()});
  ASSERT_FALSE(under_file);
  EXPECT_TRUE(under_file.error().Is(Errc::kIo));
}

TEST_P(BatchWriterTest, ArbitraryBytesEverywhereNeverBreakTheFile) {
  fs::path path = dir_.path() / "fuzz" += FileExtension(GetParam());
  auto w = OpenOrDie(path, {.encoding = GetParam(), .avro_block_bytes = kMinAvroBlockBytes});
  ASSERT_TRUE(w);
  std::mt19937 rng(42);
  auto random_bytes = [&](size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (char& c : s)
      c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng());
    return s;
  };
  std::vector<eventlog::Event> events;
  for (int i = 0; i < 200; ++i) {
    eventlog::Event e;
    e.enqueued_ms = static_cast<int64_t>(rng() % 4102444800000ull);
    auto& s = e.message.system;
    for (std::string* field :
         {&s.message_id, &s.correlation_id, &s.user_id, &s.to, &s.connection_device_id,
          &s.connection_module_id, &s.connection_auth_method, &s.connection_auth_generation_id,
          &s.content_type, &s.content_encoding}) {
      *field = random_bytes(20);
    }
    if (i % 5 == 0) s.content_type = "application/json";
    if (i % 5 == 0) s.content_encoding = "utf-8";
    for (int p = rng() % 6; p > 0; --p)
      e.message.properties.emplace_back(random_bytes(8), random_bytes(30));
    e.message.body = i % 5 == 0 ? "{\"k\":\"\xFF\"}" : random_bytes(3000);
    std::vector<Property> enrichments = {{random_bytes(5), random_bytes(5)}};
    ASSERT_TRUE(w->Append(e, enrichments));
    events.push_back(std::move(e));
  }
  ASSERT_TRUE(w->Finish());
  if (GetParam() == Encoding::kJson) {
    auto content = files::ReadFile(path);
    ASSERT_TRUE(content);
    EXPECT_TRUE(strings::IsValidUtf8(*content));
    auto lines = strings::Split(*content, '\n');
    ASSERT_EQ(lines.size(), events.size() + 1);
    for (size_t i = 0; i < events.size(); ++i) {
      boost::system::error_code ec;
      auto v = boost::json::parse(lines[i], ec);
      ASSERT_FALSE(ec) << i << ": " << lines[i];
      EXPECT_EQ(*crypto::Base64Decode(Str(v.at("Body"))), events[i].message.body);
    }
  } else {
    auto records = ReadAvroRecords(path, events.size());
    ASSERT_EQ(records.size(), events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(records[i].body, events[i].message.body);
      for (const auto& [k, v] : records[i].properties) {
        EXPECT_TRUE(strings::IsValidUtf8(k) && strings::IsValidUtf8(v));
      }
      for (const auto& [k, v] : records[i].system_properties) {
        EXPECT_TRUE(strings::IsValidUtf8(k) && strings::IsValidUtf8(v));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Encodings, BatchWriterTest,
                         ::testing::Values(Encoding::kAvro, Encoding::kAvroDeflate,
                                           Encoding::kJson),
                         [](const auto& test) { return std::string(EncodingName(test.param)); });

TEST(BatchWriterAvroTest, RecordLargerThanABlockIsRefusedAndTheWriterGoesOn) {
  orrery::testing::TempDir dir("archive");
  fs::path path = dir.path() / "batch.avro";
  auto w = OpenOrDie(path, {.avro_block_bytes = kMinAvroBlockBytes});
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(FullEvent("before")));
  auto big = w->Append(FullEvent(std::string(kMinAvroBlockBytes, 'x')));
  ASSERT_FALSE(big);
  EXPECT_TRUE(big.error().Is(Errc::kTooLarge)) << big.error().message();
  ASSERT_TRUE(w->Append(FullEvent(std::string(kMinAvroBlockBytes - 1000, 'y'))));
  ASSERT_TRUE(w->Append(FullEvent("after")));
  EXPECT_EQ(w->records(), 3u);
  ASSERT_TRUE(w->Finish());
  auto records = ReadAvroRecords(path, 3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].body, "before");
  EXPECT_EQ(records[1].body, std::string(kMinAvroBlockBytes - 1000, 'y'));
  EXPECT_EQ(records[2].body, "after");
}

TEST(RemoveStaleTempFilesTest, RemovesOnlyTempFiles) {
  orrery::testing::TempDir dir("archive");
  const fs::path& root = dir.path();
  fs::create_directories(root / "hub/0/2019");
  for (const char* name : {"a.avro.tmp", "hub/0/2019/06.json.tmp", "keep.avro",
                           "hub/0/2019/05.avro", "tmp", "hub/x.tmpl"}) {
    ASSERT_TRUE(files::WriteFileAtomic(root / name, "x"));
  }
  orrery::testing::TempDir outside("archive-outside");
  ASSERT_TRUE(files::WriteFileAtomic(outside.path() / "theirs.tmp", "x"));
  fs::create_directory_symlink(outside.path(), root / "link");
  fs::create_symlink(outside.path() / "theirs.tmp", root / "link.tmp");

  auto removed = RemoveStaleTempFiles(root);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 2u);
  EXPECT_FALSE(fs::exists(root / "a.avro.tmp"));
  EXPECT_FALSE(fs::exists(root / "hub/0/2019/06.json.tmp"));
  for (const char* name : {"keep.avro", "hub/0/2019/05.avro", "tmp", "hub/x.tmpl"}) {
    EXPECT_TRUE(fs::exists(root / name)) << name;
  }
  EXPECT_TRUE(fs::exists(outside.path() / "theirs.tmp"));  // links are not followed
  EXPECT_TRUE(fs::is_symlink(root / "link.tmp"));
  EXPECT_EQ(*RemoveStaleTempFiles(root / "missing"), 0u);
}

TEST(RemoveStaleTempFilesTest, ClearsWhatACrashLeft) {
  orrery::testing::TempDir dir("archive");
  fs::path path = dir.path() / "hub/0/batch.avro";
  auto w = OpenOrDie(path);
  ASSERT_TRUE(w);
  WriteAll(*w, SampleEvents());
  // As after a crash: the temp file is there and nobody writes it any more (the writer only
  // lives on here to be destroyed at the end).
  ASSERT_TRUE(fs::exists(w->temp_path()));
  EXPECT_EQ(*RemoveStaleTempFiles(dir.path()), 1u);
  EXPECT_TRUE(fs::is_empty(dir.path() / "hub/0"));
  auto next = OpenOrDie(path);  // the name is free again
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->Finish());
}

}  // namespace
}  // namespace orrery::archive
