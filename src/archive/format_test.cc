#include "archive/format.h"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "archive/errc.h"
#include "archive/test_util.h"

namespace orrery::archive {
namespace {

using testutil::SampleTimeMs;

// IoT Hub's documented sample (tutorial-message-enrichments): a message from
// Contoso-Test-Device with one application property, routed to a storage endpoint.
eventlog::Event DocumentedEvent() {
  eventlog::Event e;
  e.enqueued_ms = SampleTimeMs();
  auto& s = e.message.system;
  s.connection_device_id = "Contoso-Test-Device";
  s.connection_auth_method =
      R"({"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null})";
  s.connection_auth_generation_id = "636930642531278483";
  s.enqueued_time_ms = e.enqueued_ms;
  e.message.properties = {{"level", "storage"}};
  e.message.body = R"({"deviceId":"Contoso-Test-Device","temperature":29.232016848042615,)"
                   R"("humidity":64.305349692844487,"pointInfo":"This is a storage message."})";
  return e;
}

constexpr std::string_view kDocumentedSystemProperties =
    R"("SystemProperties":{"connectionDeviceId":"Contoso-Test-Device",)"
    R"("connectionAuthMethod":"{\"scope\":\"device\",\"type\":\"sas\",\"issuer\":\"iothub\",)"
    R"(\"acceptingIpFilterRule\":null}","connectionDeviceGenerationId":"636930642531278483",)"
    R"("enqueuedTime":"2019-05-10T06:06:32.7220000Z"},)"
    R"("Body":"eyJkZXZpY2VJZCI6IkNvbnRvc28tVGVzdC1EZXZpY2UiLCJ0ZW1wZXJhdHVyZSI6MjkuMjMyMDE2ODQ4MDQyNjE1)"
    R"(LCJodW1pZGl0eSI6NjQuMzA1MzQ5NjkyODQ0NDg3LCJwb2ludEluZm8iOiJUaGlzIGlzIGEgc3RvcmFnZSBtZXNzYWdlLiJ9"})";

std::string JsonLine(const eventlog::Event& e, std::span<const Property> enrichments = {}) {
  std::string out;
  AppendJsonLine(MakeRecord(e, enrichments), &out);
  return out;
}

TEST(FormatTest, EnqueuedTimeHasSevenFractionDigits) {
  EXPECT_EQ(FormatEnqueuedTime(SampleTimeMs()), "2019-05-10T06:06:32.7220000Z");
  EXPECT_EQ(FormatEnqueuedTime(0), "1970-01-01T00:00:00.0000000Z");
  EXPECT_EQ(FormatEnqueuedTime(1), "1970-01-01T00:00:00.0010000Z");
}

TEST(FormatTest, JsonLineMatchesIotHubsDocumentedRecordByteForByte) {
  EXPECT_EQ(JsonLine(DocumentedEvent()),
            std::string(R"({"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z",)") +
                R"("Properties":{"level":"storage"},)" + std::string(kDocumentedSystemProperties) +
                "\n");
}

TEST(FormatTest, EnrichmentsFollowTheApplicationProperties) {
  const Property enrichments[] = {{"my IoT Hub", "contosotesthubmsgen3276"},
                                  {"devicelocation", "$twin.tags.location"},
                                  {"customerID", "6ce345b8-1e4a-411e-9398-d34587459a3a"}};
  EXPECT_EQ(JsonLine(DocumentedEvent(), enrichments),
            std::string(R"({"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z",)") +
                R"("Properties":{"level":"storage","my IoT Hub":"contosotesthubmsgen3276",)" +
                R"("devicelocation":"$twin.tags.location",)" +
                R"("customerID":"6ce345b8-1e4a-411e-9398-d34587459a3a"},)" +
                std::string(kDocumentedSystemProperties) + "\n");
}

TEST(FormatTest, EverySystemPropertyInIotHubsNames) {
  Record r = MakeRecord(testutil::FullEvent("{}"));
  std::vector<Property> expected = {
      {"messageId", "msg-1"},
      {"correlationId", "corr-1"},
      {"userId", "user-1"},
      {"to", "/devices/dev-1/messages/events"},
      {"connectionDeviceId", "dev-1"},
      {"connectionModuleId", "mod-1"},
      {"connectionAuthMethod", R"({"scope":"device","type":"sas","issuer":"iothub"})"},
      {"connectionDeviceGenerationId", "636930642531278483"},
      {"contentType", "application/json"},
      {"contentEncoding", "utf-8"},
      {"enqueuedTime", "2019-05-10T06:06:32.7220000Z"},
  };
  EXPECT_EQ(r.system_properties, expected);  // message_source is not a storage property
  EXPECT_EQ(r.enqueued_time_utc, "2019-05-10T06:06:32.7220000Z");
}

TEST(FormatTest, RepeatedKeysKeepTheirFirstPlaceAndTheirLastValue) {
  eventlog::Event e = DocumentedEvent();
  e.message.properties = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
  const Property enrichments[] = {{"b", "enriched"}, {"c", "4"}};
  Record r = MakeRecord(e, enrichments);
  EXPECT_EQ(r.properties, (std::vector<Property>{{"a", "3"}, {"b", "enriched"}, {"c", "4"}}));
}

TEST(FormatTest, SanitizeUtf8ReplacesEveryBadByte) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(SanitizeUtf8("plain ✓ κ"), "plain ✓ κ");
  EXPECT_EQ(SanitizeUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));  // U+0000 is valid
  EXPECT_EQ(SanitizeUtf8("\xFF"), r);
  EXPECT_EQ(SanitizeUtf8("ok\xC3"), "ok" + r);                 // truncated sequence
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), r + r);                  // overlong
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80x"), r + r + r + "x");   // surrogate
  EXPECT_EQ(SanitizeUtf8("\xF4\x90\x80\x80"), r + r + r + r);  // beyond U+10FFFF
  EXPECT_EQ(SanitizeUtf8("\x80κ"), r + "κ");                   // stray continuation byte
}

TEST(FormatTest, KeysAndValuesBecomeValidUtf8AndKeysLoseNul) {
  eventlog::Event e = DocumentedEvent();
  e.message.properties = {{std::string("k\0\xFF", 3), std::string("v\0\xFE", 3)}};
  e.message.system.connection_device_id = "dev\xC3";
  Record r = MakeRecord(e);
  ASSERT_EQ(r.properties.size(), 1u);
  EXPECT_EQ(r.properties[0].first, "k\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(r.properties[0].second, std::string("v\0\xEF\xBF\xBD", 5));
  EXPECT_EQ(r.system_properties[0], (Property{"connectionDeviceId", "dev\xEF\xBF\xBD"}));
}

TEST(FormatTest, JsonBodyInlineOnlyWhenDeclaredAndValid) {
  eventlog::Event e = DocumentedEvent();
  auto inline_body = [&](std::string type, std::string encoding, std::string body) {
    e.message.system.content_type = std::move(type);
    e.message.system.content_encoding = std::move(encoding);
    e.message.body = std::move(body);
    return InlinesJsonBody(MakeRecord(e));
  };
  EXPECT_TRUE(inline_body("application/json", "utf-8", R"({"a":1})"));
  EXPECT_TRUE(inline_body("Application/JSON", "UTF-8", "[1,2]"));  // case-insensitive
  EXPECT_TRUE(inline_body("application/json", "utf-8", " 42 "));
  EXPECT_FALSE(inline_body("", "", R"({"a":1})"));  // base64, as IoT Hub does
  EXPECT_FALSE(inline_body("application/json", "", R"({"a":1})"));
  EXPECT_FALSE(inline_body("application/json", "utf-16", R"({"a":1})"));
  EXPECT_FALSE(inline_body("text/plain", "utf-8", R"({"a":1})"));
  EXPECT_FALSE(inline_body("application/json", "utf-8", R"({"a":1)"));  // not JSON
  EXPECT_FALSE(inline_body("application/json", "utf-8", ""));
  EXPECT_FALSE(inline_body("application/json", "utf-8", "{\"a\":\"\xFF\"}"));  // not UTF-8
}

TEST(FormatTest, InlineJsonBodyIsCopiedAsSentOnOneLine) {
  eventlog::Event e = DocumentedEvent();
  e.message.system.content_type = "application/json";
  e.message.system.content_encoding = "utf-8";
  e.message.body = "\r\n {\"temp\":49.91322758395974,\r\n  \"s\":\"a\\nb\"}\n";
  std::string line = JsonLine(e);
  EXPECT_NE(line.find(R"("Body":{"temp":49.91322758395974,    "s":"a\nb"}})"), std::string::npos)
      << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_TRUE(boost::json::parse(line).is_object());
}

TEST(FormatTest, JsonStringsAreEscaped) {
  eventlog::Event e = DocumentedEvent();
  e.message.properties = {{"q\"\\", std::string("\n\r\t\b\f\x01\x1f\0", 8)}};
  std::string line = JsonLine(e);
  EXPECT_NE(line.find(R"("q\"\\":"\n\r\t\b\f\u0001\u001f\u0000")"), std::string::npos) << line;
  auto v = boost::json::parse(line);
  EXPECT_EQ(v.at("Properties").at("q\"\\").as_string(),
            boost::json::string_view("\n\r\t\b\f\x01\x1f\0", 8));
}

TEST(FormatTest, EmptyBodyIsAnEmptyBase64String) {
  eventlog::Event e = DocumentedEvent();
  e.message.body.clear();
  std::string line = JsonLine(e);
  EXPECT_NE(line.find(R"("Body":""})"), std::string::npos) << line;
}

TEST(FormatTest, Encodings) {
  EXPECT_EQ(*ParseEncoding("avro"), Encoding::kAvro);
  EXPECT_EQ(*ParseEncoding("AvroDeflate"), Encoding::kAvroDeflate);
  EXPECT_EQ(*ParseEncoding("JSON"), Encoding::kJson);
  auto bad = ParseEncoding("parquet");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(bad.error().message().find("parquet"), std::string::npos);
  EXPECT_EQ(EncodingName(Encoding::kAvroDeflate), "avroDeflate");
  EXPECT_EQ(FileExtension(Encoding::kAvro), ".avro");
  EXPECT_EQ(FileExtension(Encoding::kAvroDeflate), ".avro");
  EXPECT_EQ(FileExtension(Encoding::kJson), ".json");
}

TEST(FormatTest, SchemaIsIotHubs) {
  // As it appears in the avro.schema metadata of files IoT Hub writes.
  EXPECT_EQ(kAvroSchema,
            R"({"type":"record","name":"Message","namespace":"Microsoft.Azure.Devices",)"
            R"("fields":[{"name":"EnqueuedTimeUtc","type":"string"},{"name":"Properties",)"
            R"("type":{"type":"map","values":"string"}},{"name":"SystemProperties","type":)"
            R"({"type":"map","values":"string"}},{"name":"Body","type":["null","bytes"]}]})");
}

}  // namespace
}  // namespace orrery::archive
