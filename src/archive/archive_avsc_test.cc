// Conformance: files written by BatchWriter read back by an independent Avro implementation,
// avsc (npm, pinned in test/conformance/avro/package-lock.json), through
// test/conformance/avro/read_avro.js. Every record is compared field by field. Skips when
// `node` is not installed; fails when avsc is not (scripts/install-node-deps installs it).
#include <unistd.h>

#include <cstdlib>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "archive/batch_writer.h"
#include "archive/test_util.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "test/support/process.h"

namespace orrery::archive {
namespace {

namespace fs = std::filesystem;

bool NodeInstalled() {
  const char* path = std::getenv("PATH");
  for (std::string_view dir : strings::Split(path ? path : "", ':')) {
    if (!dir.empty() && ::access((fs::path(dir) / "node").c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::map<std::string, std::string> AsMap(const std::vector<Property>& properties) {
  return {properties.begin(), properties.end()};
}

std::map<std::string, std::string> AsMap(const boost::json::object& object) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : object) {
    const auto& s = value.as_string();
    out.emplace(std::string(key), std::string(s.data(), s.size()));
  }
  return out;
}

class AvscTest : public ::testing::TestWithParam<Encoding> {
 protected:
  void SetUp() override {
    if (!NodeInstalled()) GTEST_SKIP() << "node is not installed (scripts/install-deps)";
    const char* source = std::getenv("ORRERY_SOURCE_DIR");
    ASSERT_NE(source, nullptr) << "ORRERY_SOURCE_DIR is not set (run through ctest)";
    dir_ = fs::path(source) / "test/conformance/avro";
    ASSERT_TRUE(fs::exists(dir_ / "node_modules/avsc/package.json"))
        << "avsc is not installed in " << dir_ << ": run scripts/install-node-deps";
  }

  // read_avro.js --header [--rows] FILE: the header line, then one line per record.
  std::vector<boost::json::value> ReadWithAvsc(const fs::path& file, bool rows = false) {
    std::vector<std::string> args = {"node", (dir_ / "read_avro.js").string(), "--header"};
    if (rows) args.push_back("--rows");
    args.push_back(file.string());
    auto node = orrery::testing::Process::Spawn(args);
    auto code = node->Wait(std::chrono::seconds(60));
    EXPECT_EQ(code, 0) << node->output();
    std::vector<boost::json::value> lines;
    for (std::string_view line : strings::Split(node->output(), '\n')) {
      if (line.empty()) continue;
      boost::system::error_code ec;
      lines.push_back(boost::json::parse(line, ec));
      EXPECT_FALSE(ec) << "not a JSON line: " << line;
    }
    return lines;
  }

  fs::path dir_;
  orrery::testing::TempDir tmp_{"archive-avsc"};
};

TEST_P(AvscTest, EveryRecordReadsBackIdentically) {
  std::vector<eventlog::Event> events;
  std::string all_bytes;
  for (int i = 0; i < 256; ++i)
    all_bytes.push_back(static_cast<char>(i));
  events.push_back(testutil::FullEvent(all_bytes));
  events.push_back(testutil::FullEvent(R"({"temperature":21.5,"text":"ünïcode ✓ 🌍"})"));
  events.push_back(testutil::FullEvent(""));
  eventlog::Event odd = testutil::FullEvent("odd");
  odd.message.properties = {{"123", "integer-like key"},
                            {std::string("nul\0key", 7), std::string("nul\0value", 9)},
                            {"bad\xFFutf8", "value\xC3"}};
  events.push_back(odd);
  // Enough data for many blocks of the smallest block size.
  for (int i = 0; i < 100; ++i)
    events.push_back(testutil::FullEvent(std::string(5000, 'a' + i % 26)));
  const std::vector<Property> enrichments = {{"myIotHub", "ContosoTestHub"}, {"level", "over"}};

  fs::path path = tmp_.path() / "hub/0/2019/05/10/06/06.avro";
  auto w =
      BatchWriter::Open(path, {.encoding = GetParam(), .avro_block_bytes = kMinAvroBlockBytes});
  ASSERT_TRUE(w) << w.error().message();
  for (const auto& e : events)
    ASSERT_TRUE((*w)->Append(e, enrichments));
  ASSERT_TRUE((*w)->Finish());

  auto lines = ReadWithAvsc(path);
  ASSERT_EQ(lines.size(), events.size() + 1);
  const auto& header = lines[0].as_object();
  EXPECT_EQ(header.at("codec").as_string(), GetParam() == Encoding::kAvro ? "null" : "deflate");
  // avsc's rendering of IoT Hub's schema (it folds the namespace into the name).
  EXPECT_EQ(
      header.at("schema"),
      boost::json::parse(R"({"name":"Microsoft.Azure.Devices.Message","type":"record","fields":[)"
                         R"({"name":"EnqueuedTimeUtc","type":"string"},)"
                         R"({"name":"Properties","type":{"type":"map","values":"string"}},)"
                         R"({"name":"SystemProperties","type":{"type":"map","values":"string"}},)"
                         R"({"name":"Body","type":["null","bytes"]}]})"));

  for (size_t i = 0; i < events.size(); ++i) {
    Record expected = MakeRecord(events[i], enrichments);
    const auto& got = lines[i + 1].as_object();
    EXPECT_EQ(got.at("EnqueuedTimeUtc").as_string(), expected.enqueued_time_utc) << i;
    EXPECT_EQ(AsMap(got.at("Properties").as_object()), AsMap(expected.properties)) << i;
    EXPECT_EQ(AsMap(got.at("SystemProperties").as_object()), AsMap(expected.system_properties))
        << i;
    EXPECT_EQ(got.at("Body").as_string(), crypto::Base64Encode(events[i].message.body)) << i;
  }
  // The normalisation avsc saw: a UTF-8 replacement for each bad byte, U+0000 kept in values.
  const auto& props = lines[4].at("Properties").as_object();
  EXPECT_EQ(props.at("bad\xEF\xBF\xBDutf8").as_string(), "value\xEF\xBF\xBD");
  EXPECT_EQ(props.at("nul\xEF\xBF\xBDkey").as_string(), boost::json::string_view("nul\0value", 9));
  EXPECT_EQ(props.at("level").as_string(), "over");
}

TEST_P(AvscTest, RowsReadBackAsTheirColumns) {
  // Rows of one shape whose values change type, over many blocks of the smallest size.
  std::vector<std::string> bodies;
  for (int i = 0; i < 300; ++i) {
    std::string v = i % 4 == 0   ? std::to_string(i)
                    : i % 4 == 1 ? std::to_string(i) + ".5"
                    : i % 4 == 2 ? "\"ünïcode ✓ " + std::string(400, 'a' + i % 26) + "\""
                                 : "null";
    bodies.push_back(
        fmt::format(R"({{"deviceId":"d-{}","value":{},"alert":{},"where":{{"lat":1}}}})", i % 7, v,
                    i % 2 == 0 ? "true" : "false"));
  }
  fs::path path = tmp_.path() / "rows.avro";
  auto w = BatchWriter::Open(
      path, {.encoding = GetParam(), .body_rows = true, .avro_block_bytes = kMinAvroBlockBytes});
  ASSERT_TRUE(w) << w.error().message();
  for (const auto& b : bodies)
    ASSERT_TRUE((*w)->Append(testutil::FullEvent(b)));
  ASSERT_TRUE((*w)->Finish());

  auto lines = ReadWithAvsc(path, /*rows=*/true);
  ASSERT_EQ(lines.size(), bodies.size() + 1);
  const auto& schema = lines[0].at("schema");
  EXPECT_EQ(schema.at("name"), "Orrery.StreamAnalytics.Row");
  ASSERT_EQ(schema.at("fields").as_array().size(), 4u);
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto expected = boost::json::parse(bodies[i]).as_object();
    expected["where"] = R"({"lat":1})";  // nested values are their JSON text
    EXPECT_EQ(lines[i + 1], expected) << i;
  }
}

TEST_P(AvscTest, EmptyBatchHasNoRecords) {
  fs::path path = tmp_.path() / "empty.avro";
  auto w = BatchWriter::Open(path, {.encoding = GetParam()});
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE((*w)->Finish());
  auto lines = ReadWithAvsc(path);
  ASSERT_EQ(lines.size(), 1u);  // the header only
  EXPECT_TRUE(lines[0].as_object().contains("schema"));
}

INSTANTIATE_TEST_SUITE_P(Codecs, AvscTest,
                         ::testing::Values(Encoding::kAvro, Encoding::kAvroDeflate),
                         [](const auto& test) { return std::string(EncodingName(test.param)); });

}  // namespace
}  // namespace orrery::archive
