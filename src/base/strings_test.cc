#include "base/strings.h"

#include <gtest/gtest.h>

namespace orrery::strings {
namespace {

TEST(StringsTest, UrlEncodeIsStrict) {
  EXPECT_EQ(UrlEncode("localhost/devices/dev 1"), "localhost%2Fdevices%2Fdev%201");
  EXPECT_EQ(UrlEncode("a!'()*~"), "a%21%27%28%29%2A~");
  EXPECT_EQ(UrlEncode("k+/="), "k%2B%2F%3D");
}

TEST(StringsTest, UrlDecode) {
  EXPECT_EQ(UrlDecode("a%2Fb%3d"), "a/b=");
  EXPECT_EQ(UrlDecode("a+b"), "a+b");
  EXPECT_EQ(UrlDecode("a+b", true), "a b");
  EXPECT_FALSE(UrlDecode("%2"));
  EXPECT_FALSE(UrlDecode("%"));
  EXPECT_FALSE(UrlDecode("%zz"));
}

TEST(StringsTest, SplitAndCase) {
  EXPECT_EQ(Split("a;;b", ';'), (std::vector<std::string_view>{"a", "", "b"}));
  auto [k, v] = SplitOnce("SharedAccessKey=abc==", '=');
  EXPECT_EQ(k, "SharedAccessKey");
  EXPECT_EQ(v, "abc==");
  EXPECT_FALSE(SplitOnce("novalue", '=').second);
  EXPECT_TRUE(IEquals("LocalHost", "localhost"));
  EXPECT_FALSE(IEquals("localhost", "localhost2"));
  EXPECT_EQ(Trim("  x \n"), "x");
}

}  // namespace
}  // namespace orrery::strings
