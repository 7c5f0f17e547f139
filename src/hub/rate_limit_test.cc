#include "hub/rate_limit.h"

#include <gtest/gtest.h>

#include "hub/test_util.h"

namespace orrery::hub {
namespace {

TEST(RateLimitTest, OffByDefaultAllowsEverything) {
  RateLimiter off(0, 1);
  EXPECT_FALSE(off.enabled());
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(off.Take("k"), 0);
}

TEST(RateLimitTest, BurstThenRefillPerKey) {
  testing::FakeClock clock;
  RateLimiter limit(10, 3, clock.fn());  // 10/s, bursts of 3
  EXPECT_EQ(limit.Take("a"), 0);
  EXPECT_EQ(limit.Take("a"), 0);
  EXPECT_EQ(limit.Take("a"), 0);
  EXPECT_EQ(limit.Take("a"), 100);  // one token takes 100 ms
  EXPECT_EQ(limit.Take("b"), 0);    // keys are independent
  clock.Advance(50);
  EXPECT_EQ(limit.Take("a"), 50);
  clock.Advance(50);
  EXPECT_EQ(limit.Take("a"), 0);
  EXPECT_GT(limit.Take("a"), 0);
  clock.Advance(10'000);  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(limit.Take("a"), 0);
  EXPECT_GT(limit.Take("a"), 0);
}

TEST(RateLimitTest, KeyCountIsBounded) {
  testing::FakeClock clock;
  RateLimiter limit(1, 1, clock.fn(), /*max_keys=*/2);
  EXPECT_EQ(limit.Take("a"), 0);
  EXPECT_EQ(limit.Take("b"), 0);
  EXPECT_GT(limit.Take("c"), 0);  // no room, and a and b are not idle yet
  clock.Advance(1000);            // a and b are full again: forgotten
  EXPECT_EQ(limit.Take("c"), 0);
}

}  // namespace
}  // namespace orrery::hub
