#include "archive/path_template.h"

#include <gtest/gtest.h>

#include "archive/errc.h"
#include "archive/test_util.h"

namespace orrery::archive {
namespace {

using testutil::SampleTimeMs;

std::string FormatOrDie(std::string_view format, Encoding encoding = Encoding::kAvro,
                        int64_t start_ms = SampleTimeMs(), uint32_t partition = 3) {
  auto t = PathTemplate::Parse(format);
  EXPECT_TRUE(t) << (t ? "" : t.error().message());
  if (!t) return {};
  auto path = t->Format("ContosoTestHub", partition, start_ms, encoding);
  EXPECT_TRUE(path) << (path ? "" : path.error().message());
  return path ? path->string() : std::string();
}

// The error message of a template Parse() must refuse.
std::string Refusal(std::string_view format) {
  auto t = PathTemplate::Parse(format);
  if (t) {
    ADD_FAILURE() << "accepted " << format;
    return {};
  }
  EXPECT_TRUE(t.error().Is(Errc::kInvalidArgument));
  return t.error().message();
}

TEST(PathTemplateTest, DefaultFormatAsIotHubNamesBlobs) {
  // IoT Hub's tutorial: hub ContosoTestHub, partition 0, 2018-10-30 10:56 →
  // ContosoTestHub/0/2018/10/30/10/56.
  int64_t ms = *timeutil::ParseUtcMs("2018-10-30T10:56:59.999Z");
  EXPECT_EQ(FormatOrDie(kDefaultFileNameFormat, Encoding::kAvro, ms, 0),
            "ContosoTestHub/0/2018/10/30/10/56.avro");
  EXPECT_EQ(FormatOrDie(kDefaultFileNameFormat, Encoding::kJson, ms, 0),
            "ContosoTestHub/0/2018/10/30/10/56.json");
  EXPECT_EQ(FormatOrDie(kDefaultFileNameFormat, Encoding::kAvroDeflate, ms, 0),
            "ContosoTestHub/0/2018/10/30/10/56.avro");
}

TEST(PathTemplateTest, FieldsAreZeroPaddedUtc) {
  int64_t ms = *timeutil::ParseUtcMs("2024-01-02T03:04:05+05:00");  // 2024-01-01T22:04Z
  EXPECT_EQ(FormatOrDie(kDefaultFileNameFormat, Encoding::kAvro, ms, 12),
            "ContosoTestHub/12/2024/01/01/22/04.avro");
}

TEST(PathTemplateTest, TokensInAnyOrderWithLiteralTextAndRepeats) {
  EXPECT_EQ(FormatOrDie("archive/{YYYY}-{MM}-{DD}/{HH}{mm}_{iothub}_p{partition}_{mm}"),
            "archive/2019-05-10/0606_ContosoTestHub_p3_06.avro");
}

TEST(PathTemplateTest, ExtensionAlreadyInTheTemplateIsNotRepeated) {
  EXPECT_EQ(FormatOrDie("{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}.json", Encoding::kJson),
            "ContosoTestHub/3/2019/05/10/06/06.json");
  EXPECT_EQ(FormatOrDie("{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}.JSON", Encoding::kJson),
            "ContosoTestHub/3/2019/05/10/06/06.JSON");
  EXPECT_EQ(FormatOrDie("{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}.avro", Encoding::kJson),
            "ContosoTestHub/3/2019/05/10/06/06.avro.json");
}

TEST(PathTemplateTest, EveryTokenIsRequired) {
  std::string why = Refusal("{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}");
  EXPECT_NE(why.find("missing {mm}"), std::string::npos) << why;
  why = Refusal("{YYYY}/{MM}/{DD}/{HH}/{mm}");
  EXPECT_NE(why.find("missing {iothub} {partition}"), std::string::npos) << why;
  EXPECT_FALSE(Refusal("static/name").empty());
}

TEST(PathTemplateTest, UnknownTokensAreRefusedByName) {
  std::string why = Refusal("{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}/{ss}");
  EXPECT_NE(why.find("unknown token {ss}"), std::string::npos) << why;
  EXPECT_NE(why.find("allowed: {iothub} {partition} {YYYY} {MM} {DD} {HH} {mm}"), std::string::npos)
      << why;
  // Tokens are case-sensitive: {MM} is the month and {mm} the minute.
  why = Refusal("{iothub}/{partition}/{yyyy}/{MM}/{DD}/{HH}/{mm}");
  EXPECT_NE(why.find("unknown token {yyyy}"), std::string::npos) << why;
  why = Refusal("{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}{}");
  EXPECT_NE(why.find("unknown token {}"), std::string::npos) << why;
}

TEST(PathTemplateTest, UnbalancedBracesAreRefused) {
  for (std::string_view format : {"{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm",
                                  "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/mm}",
                                  "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{{mm}}"}) {
    std::string why = Refusal(format);
    EXPECT_NE(why.find("unbalanced"), std::string::npos) << format << ": " << why;
  }
}

TEST(PathTemplateTest, PathsThatCouldLeaveTheRootAreRefused) {
  const std::string tokens = "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}";
  EXPECT_NE(Refusal("/" + tokens).find("relative"), std::string::npos);
  for (const std::string& format : std::initializer_list<std::string>{
           "../" + tokens, tokens + "/..", "./" + tokens, "a//" + tokens, tokens + "/",
           std::string("{iothub}/../{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}")}) {
    std::string why = Refusal(format);
    EXPECT_NE(why.find("segment"), std::string::npos) << format << ": " << why;
  }
  EXPECT_FALSE(Refusal("a\\b/" + tokens).empty());
  EXPECT_FALSE(Refusal("a\nb/" + tokens).empty());
  EXPECT_FALSE(Refusal(std::string("a\0b/", 4) + tokens).empty());
  EXPECT_FALSE(Refusal("\xFF/" + tokens).empty());
  EXPECT_FALSE(Refusal("").empty());
  EXPECT_FALSE(Refusal(std::string(kMaxFileNameFormatBytes, 'a') + tokens).empty());
}

TEST(PathTemplateTest, UnsafeHubNamesAreRefused) {
  auto t = PathTemplate::Parse(kDefaultFileNameFormat);
  ASSERT_TRUE(t);
  for (std::string_view hub : {"", ".", "..", "a/b", "a\\b", "a\nb"}) {
    auto path = t->Format(hub, 0, SampleTimeMs(), Encoding::kAvro);
    ASSERT_FALSE(path) << hub;
    EXPECT_TRUE(path.error().Is(Errc::kInvalidArgument));
  }
  EXPECT_TRUE(t->Format("my.hub-01", 0, SampleTimeMs(), Encoding::kAvro));
}

TEST(PathTemplateTest, TimesBeyondYear9999AreRefused) {
  auto t = PathTemplate::Parse(kDefaultFileNameFormat);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->Format("hub", 0, 253402300800000, Encoding::kAvro));  // 10000-01-01
  EXPECT_TRUE(t->Format("hub", 0, 253402300799999, Encoding::kAvro));   // 9999-12-31
}

}  // namespace
}  // namespace orrery::archive
