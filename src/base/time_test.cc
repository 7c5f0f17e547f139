#include "base/time.h"

#include <gtest/gtest.h>

#include "base/strings.h"

namespace orrery {
namespace {

TEST(TimeTest, FormatsAndParsesIso8601WithMilliseconds) {
  EXPECT_EQ(timeutil::FormatUtcMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(timeutil::FormatUtcMs(1795322094123), "2026-11-22T04:34:54.123Z");
  EXPECT_EQ(timeutil::ParseUtcMs("2026-11-22T04:34:54.123Z"), 1795322094123);
  EXPECT_EQ(timeutil::ParseUtcMs("2026-11-22T04:34:54Z"), 1795322094000);
  EXPECT_EQ(timeutil::ParseUtcMs("2026-11-22T04:34:54.1234567Z"), 1795322094123);
  EXPECT_EQ(timeutil::ParseUtcMs("2026-11-22T05:34:54.5+01:00"), 1795322094500);
  EXPECT_EQ(timeutil::ParseUtcMs("2026-11-22 04:34:54Z"), 1795322094000);
  for (auto bad :
       {"", "2026-11-22", "2026-11-22T04:34:54", "2026-02-31T00:00:00Z", "2026-13-01T00:00:00Z",
        "2026-11-22T04:34:54.Z", "2026-11-22T04:34:54Zjunk", "20261122T103454Z"}) {
    EXPECT_FALSE(timeutil::ParseUtcMs(bad)) << bad;
  }
  auto now = timeutil::NowMs();
  EXPECT_EQ(timeutil::ParseUtcMs(timeutil::FormatUtcMs(now)), now);
}

TEST(StringsUtf8Test, AcceptsWellFormedRejectsBroken) {
  EXPECT_TRUE(strings::IsValidUtf8("plain ascii"));
  EXPECT_TRUE(strings::IsValidUtf8(std::string_view("nul\0ok", 6)));
  EXPECT_TRUE(strings::IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_FALSE(strings::IsValidUtf8("\xC0\xAF"));                             // overlong
  EXPECT_FALSE(strings::IsValidUtf8("\xED\xA0\x80"));                         // surrogate
  EXPECT_FALSE(strings::IsValidUtf8("\xF4\x90\x80\x80"));                     // > U+10FFFF
  EXPECT_FALSE(strings::IsValidUtf8("\xE2\x82"));                             // truncated
}

}  // namespace
}  // namespace orrery
