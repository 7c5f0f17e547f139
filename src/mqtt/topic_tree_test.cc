#include "mqtt/topic_tree.h"

#include <gtest/gtest.h>

#include "mqtt/session.h"

namespace orrery::mqtt {
namespace {

std::vector<std::string> Who(const TopicTree& t, std::string_view topic) {
  std::vector<Target> out;
  t.Match(topic, out);
  std::vector<std::string> ids;
  for (auto& o : out)
    ids.push_back(o.session->client_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(TopicTreeTest, MatchesWildcardsAndPrunes) {
  TopicTree t;
  auto a = std::make_shared<Session>("a"), b = std::make_shared<Session>("b"),
       c = std::make_shared<Session>("c");
  EXPECT_TRUE(t.Add("s/+/temp", a, {}, 0));
  EXPECT_TRUE(t.Add("s/#", b, {}, 0));
  EXPECT_TRUE(t.Add("s/1/temp", c, {}, 0));
  EXPECT_FALSE(t.Add("s/1/temp", c, {.qos = 1}, 0));  // replaced, not added
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(Who(t, "s/1/temp"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Who(t, "s/2/temp"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Who(t, "s"), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Who(t, "x/1/temp"), (std::vector<std::string>{}));
  EXPECT_TRUE(t.Remove("s/#", b.get()));
  EXPECT_FALSE(t.Remove("s/#", b.get()));
  EXPECT_EQ(Who(t, "s/1/temp"), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(t.Remove("s/+/temp", a.get()));
  EXPECT_TRUE(t.Remove("s/1/temp", c.get()));
  EXPECT_EQ(t.size(), 0u);
}

TEST(TopicTreeTest, DollarTopicsSkipRootWildcards) {
  TopicTree t;
  auto a = std::make_shared<Session>("a"), b = std::make_shared<Session>("b");
  t.Add("#", a, {}, 0);
  t.Add("$SYS/#", b, {}, 0);
  EXPECT_EQ(Who(t, "$SYS/uptime"), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Who(t, "x"), (std::vector<std::string>{"a"}));
}

TEST(TopicTreeTest, SharedGroupsPickOneOnlineMemberRoundRobin) {
  TopicTree t;
  auto a = std::make_shared<Session>("a"), b = std::make_shared<Session>("b"),
       c = std::make_shared<Session>("c");
  a->online = true;
  b->online = true;
  t.Add("$share/g/jobs", a, {}, 0);
  t.Add("$share/g/jobs", b, {}, 0);
  t.Add("$share/g/jobs", c, {}, 0);  // offline: skipped while others are online
  std::map<std::string, int> hits;
  for (int i = 0; i < 12; ++i) {
    auto w = Who(t, "jobs");
    ASSERT_EQ(w.size(), 1u);
    hits[w[0]]++;
  }
  EXPECT_EQ(hits["c"], 0);
  EXPECT_GT(hits["a"], 0);
  EXPECT_GT(hits["b"], 0);
  EXPECT_TRUE(t.Remove("$share/g/jobs", a.get()));
  EXPECT_TRUE(t.Remove("$share/g/jobs", b.get()));
  EXPECT_EQ(Who(t, "jobs"), (std::vector<std::string>{"c"}));  // offline still gets queued
}

}  // namespace
}  // namespace orrery::mqtt
