#include "mqtt/topic.h"

#include <gtest/gtest.h>

namespace orrery::mqtt {
namespace {

TEST(TopicTest, Utf8Rules) {
  EXPECT_TRUE(IsValidUtf8("héllo €𝄞"));
  EXPECT_FALSE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(TopicTest, NamesAndFilters) {
  EXPECT_TRUE(IsValidTopicName("a/b"));
  EXPECT_TRUE(IsValidTopicName("/"));
  EXPECT_FALSE(IsValidTopicName(""));
  EXPECT_FALSE(IsValidTopicName("a/+"));
  EXPECT_FALSE(IsValidTopicName("a/#"));
  for (const char* f : {"#", "+", "a/#", "a/+/b", "+/+", "/", "a//b", "$share/g/a/#", "$SYS/#"}) {
    EXPECT_TRUE(IsValidTopicFilter(f)) << f;
  }
  for (const char* f :
       {"", "a#", "a/#/b", "a+/b", "#/a", "$share/g", "$share//a", "$share/g+/a", "$share/g/a#"}) {
    EXPECT_FALSE(IsValidTopicFilter(f)) << f;
  }
  auto s = SplitShared("$share/grp/a/b");
  EXPECT_EQ(s.group, "grp");
  EXPECT_EQ(s.filter, "a/b");
  EXPECT_TRUE(SplitShared("a/b").group.empty());
}

TEST(TopicTest, Matching) {
  struct Case {
    const char* filter;
    const char* topic;
    bool match;
  } cases[] = {
      {"a/b", "a/b", true},       {"a/b", "a/c", false},  {"a/+", "a/b", true},
      {"a/+", "a/b/c", false},    {"a/#", "a", true},     {"a/#", "a/b/c", true},
      {"#", "a/b", true},         {"+/+", "/a", true},    {"+", "/a", false},
      {"a/+/c", "a//c", true},    {"#", "$SYS/x", false}, {"+/x", "$SYS/x", false},
      {"$SYS/#", "$SYS/x", true}, {"a/b/#", "a/b", true}, {"a/b/+", "a/b", false},
      {"/#", "/", true},          {"+", "", true},        {"a", "a/b", false},
  };
  for (auto& c : cases) {
    EXPECT_EQ(TopicMatches(c.filter, c.topic), c.match) << c.filter << " vs " << c.topic;
  }
}

}  // namespace
}  // namespace orrery::mqtt
