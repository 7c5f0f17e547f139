#include "base/metrics.h"

#include <thread>

#include <gtest/gtest.h>

namespace orrery::metrics {
namespace {

TEST(MetricsTest, RendersCountersGaugesWithLabels) {
  Registry r;
  r.GetCounter("orrery_test_total", "Things counted.", {{"kind", "a\"b"}}).Inc(3);
  r.GetCounter("orrery_test_total", "Things counted.", {{"kind", "c"}}).Inc();
  r.GetGauge("orrery_level", "A level.").Set(-7);
  std::string text = r.Render();
  EXPECT_NE(text.find("# HELP orrery_test_total Things counted.\n# TYPE orrery_test_total "
                      "counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("orrery_test_total{kind=\"a\\\"b\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("orrery_test_total{kind=\"c\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("orrery_level -7\n"), std::string::npos) << text;
  // One header per family.
  EXPECT_EQ(text.find("# TYPE orrery_test_total"), text.rfind("# TYPE orrery_test_total"));
}

TEST(MetricsTest, SameSeriesIsReturnedTwice) {
  Registry r;
  Counter& a = r.GetCounter("x_total", "x", {{"l", "1"}});
  Counter& b = r.GetCounter("x_total", "x", {{"l", "1"}});
  EXPECT_EQ(&a, &b);
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram& h = r.GetHistogram("lat_seconds", "Latency.", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = r.Render();
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_sum 6.05\n"), std::string::npos) << text;
}

TEST(MetricsTest, CollectorsReportAndUnregister) {
  Registry r;
  {
    ScopedCollector c(r, [](Sink& s) {
      s.Gauge("queue_depth", "Depth.", {{"q", "a"}}, 5);
      s.Gauge("queue_depth", "Depth.", {{"q", "b"}}, 6);
    });
    std::string text = r.Render();
    EXPECT_NE(text.find("# TYPE queue_depth gauge\nqueue_depth{q=\"a\"} 5\nqueue_depth{q=\"b\"} 6"),
              std::string::npos)
        << text;
  }
  EXPECT_EQ(r.Render().find("queue_depth"), std::string::npos);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry r;
  Counter& c = r.GetCounter("n_total", "n");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i)
        c.Inc();
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(c.Value(), 400000u);
}

}  // namespace
}  // namespace orrery::metrics
