#include "eventlog/consumer_groups.h"

#include <gtest/gtest.h>

#include "base/files.h"
#include "eventlog/test_util.h"

namespace orrery::eventlog {
namespace {

TEST(ConsumerGroupsTest, DefaultGroupAlwaysExists) {
  testutil::TempDir dir("groups");
  auto groups = ConsumerGroups::Open(dir.path(), 4);
  ASSERT_TRUE(groups) << groups.error().message();
  EXPECT_TRUE((*groups)->Exists("$Default"));
  EXPECT_EQ((*groups)->List(), std::vector<std::string>{"$Default"});
  auto del = (*groups)->Delete("$Default");
  ASSERT_FALSE(del);
  EXPECT_TRUE(del.error().Is(Errc::kInvalidArgument));
}

TEST(ConsumerGroupsTest, CreateDeleteAndDurableCheckpoints) {
  testutil::TempDir dir("groups");
  {
    auto groups = ConsumerGroups::Open(dir.path(), 4).value();
    ASSERT_TRUE(groups->Create("analytics"));
    EXPECT_TRUE(groups->Create("analytics").error().Is(Errc::kGroupExists));
    ASSERT_TRUE(groups->Create("archive-1"));
    EXPECT_EQ(groups->GetCheckpoint("analytics", 2).value(), std::nullopt);
    ASSERT_TRUE(groups->Checkpoint("analytics", 2, 1234));
    ASSERT_TRUE(groups->Checkpoint("analytics", 2, 1300));
    ASSERT_TRUE(groups->Checkpoint("$Default", 0, 7));
    EXPECT_EQ(groups->GetCheckpoint("analytics", 2).value(), 1300u);
    EXPECT_TRUE(groups->Checkpoint("nope", 0, 1).error().Is(Errc::kGroupNotFound));
    EXPECT_TRUE(groups->Checkpoint("analytics", 4, 1).error().Is(Errc::kInvalidArgument));
    ASSERT_TRUE(groups->Delete("archive-1"));
    EXPECT_TRUE(groups->Delete("archive-1").error().Is(Errc::kGroupNotFound));
  }
  // Reopened: the same groups and checkpoints.
  auto groups = ConsumerGroups::Open(dir.path(), 4).value();
  EXPECT_EQ(groups->List(), (std::vector<std::string>{"$Default", "analytics"}));
  EXPECT_EQ(groups->GetCheckpoint("analytics", 2).value(), 1300u);
  EXPECT_EQ(groups->GetCheckpoint("analytics", 1).value(), std::nullopt);
  EXPECT_EQ(groups->GetCheckpoint("$Default", 0).value(), 7u);
  auto snapshot = groups->Snapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  EXPECT_EQ(snapshot["analytics"][2], 1300u);
}

TEST(ConsumerGroupsTest, ValidatesNames) {
  EXPECT_TRUE(IsValidConsumerGroupName("$Default"));
  EXPECT_TRUE(IsValidConsumerGroupName("a"));
  EXPECT_TRUE(IsValidConsumerGroupName("my.group-1_x"));
  EXPECT_TRUE(IsValidConsumerGroupName(std::string(50, 'g')));
  EXPECT_FALSE(IsValidConsumerGroupName(""));
  EXPECT_FALSE(IsValidConsumerGroupName(std::string(51, 'g')));
  EXPECT_FALSE(IsValidConsumerGroupName("-a"));
  EXPECT_FALSE(IsValidConsumerGroupName("a."));
  EXPECT_FALSE(IsValidConsumerGroupName("../etc"));
  EXPECT_FALSE(IsValidConsumerGroupName("a/b"));
  EXPECT_FALSE(IsValidConsumerGroupName("$default"));
  testutil::TempDir dir("groups");
  auto groups = ConsumerGroups::Open(dir.path(), 1).value();
  EXPECT_TRUE(groups->Create("../x").error().Is(Errc::kInvalidArgument));
}

TEST(ConsumerGroupsTest, CorruptCheckpointFileIsAClearError) {
  testutil::TempDir dir("groups");
  ASSERT_TRUE(files::WriteFileAtomic(dir.path() / "g1.ckpt", "orrery-checkpoints 1\n0 x\n"));
  auto groups = ConsumerGroups::Open(dir.path(), 2);
  ASSERT_FALSE(groups);
  EXPECT_TRUE(groups.error().Is(Errc::kCorrupt));
  EXPECT_NE(groups.error().message().find("g1.ckpt"), std::string::npos);
}

}  // namespace
}  // namespace orrery::eventlog
