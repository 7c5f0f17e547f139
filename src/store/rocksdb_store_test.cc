#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <thread>

#include <gtest/gtest.h>

#include "store/kv_store.h"

namespace orrery::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<KvStore> Open() {
    auto s = OpenRocksDb({.path = dir_});
    EXPECT_TRUE(s) << s.error().message();
    return std::move(*s);
  }
  std::filesystem::path dir_;
};

TEST_F(StoreTest, PutGetScanDeleteAcrossReopen) {
  {
    auto db = Open();
    WriteBatch b;
    b.Put("sessions", "c1", "one");
    b.Put("sessions", "c2", "two");
    b.Put("sessionsX", "c3", "other space");
    b.Put("retained", "a/b", "r");
    ASSERT_TRUE(db->Write(std::move(b), Durability::kDurable));
  }
  auto db = Open();
  EXPECT_EQ(db->Get("sessions", "c1").value(), "one");
  EXPECT_FALSE(db->Get("sessions", "c9").value());
  std::vector<std::string> keys;
  ASSERT_TRUE(db->Scan("sessions", "", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  EXPECT_EQ(keys, (std::vector<std::string>{"c1", "c2"}));
  WriteBatch d;
  d.Delete("sessions", "c1");
  ASSERT_TRUE(db->Write(std::move(d), Durability::kBuffered));
  EXPECT_FALSE(db->Get("sessions", "c1").value());
}

TEST_F(StoreTest, ScanHonoursPrefixAndEarlyStop) {
  auto db = Open();
  WriteBatch b;
  for (int i = 0; i < 10; ++i)
    b.Put("q", "client/" + std::to_string(i), "v");
  b.Put("q", "clienu", "v");
  ASSERT_TRUE(db->Write(std::move(b), Durability::kBuffered));
  int n = 0;
  ASSERT_TRUE(
      db->Scan("q", "client/", [&](std::string_view, std::string_view) { return ++n < 3; }));
  EXPECT_EQ(n, 3);
  n = 0;
  ASSERT_TRUE(
      db->Scan("q", "client/", [&](std::string_view, std::string_view) { return ++n > 0; }));
  EXPECT_EQ(n, 10);
}

TEST_F(StoreTest, AsyncWritesFromManyThreadsAllCompleteAndPersist) {
  {
    auto db = Open();
    std::atomic<int> done{0};
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 250; ++i) {
          WriteBatch b;
          b.Put("m", std::to_string(t) + "/" + std::to_string(i), "x");
          db->WriteAsync(std::move(b), [&](Status s) {
            EXPECT_TRUE(s);
            if (++done == 1000) {
              std::lock_guard l(mu);
              cv.notify_all();
            }
          });
        }
      });
    }
    for (auto& t : threads)
      t.join();
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return done == 1000; }));
  }
  auto db = Open();
  int n = 0;
  ASSERT_TRUE(db->Scan("m", "", [&](std::string_view, std::string_view) { return ++n > 0; }));
  EXPECT_EQ(n, 1000);
}

TEST_F(StoreTest, DrainWaitsForEveryQueuedCallbackAndReleasesWhatItOwns) {
  auto db = Open();
  std::vector<std::weak_ptr<int>> owned;
  std::atomic<int> ran{0};
  for (int i = 0; i < 200; ++i) {
    auto token = std::make_shared<int>(i);
    owned.push_back(token);
    WriteBatch b;
    b.Put("m", std::to_string(i), "x");
    db->WriteAsync(std::move(b), [token, &ran](Status s) {
      EXPECT_TRUE(s);
      ++ran;
    });
  }
  db->Drain();
  EXPECT_EQ(ran.load(), 200);
  for (auto& w : owned)
    EXPECT_TRUE(w.expired());
}

TEST_F(StoreTest, SecondOpenOfALockedStoreIsAClearError) {
  auto db = Open();
  auto second = OpenRocksDb({.path = dir_});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("cannot open the state store"), std::string::npos);
}

}  // namespace
}  // namespace orrery::store
