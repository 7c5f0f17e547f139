// Test helpers for the hub's unit tests: a state store in a temp directory, an injectable
// clock, and waiting for asynchronous completions.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "base/error.h"
#include "store/kv_store.h"

namespace orrery::hub::testing {

class StoreDir {
 public:
  StoreDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("orrery-hub-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
  }
  ~StoreDir() { std::filesystem::remove_all(path_); }
  std::unique_ptr<store::KvStore> Open() const {
    auto s = store::OpenRocksDb({.path = path_});
    EXPECT_TRUE(s) << s.error().message();
    return std::move(*s);
  }

 private:
  std::filesystem::path path_;
};

// A manual clock: thread-safe, starts at a fixed instant.
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> now =
      std::make_shared<std::atomic<int64_t>>(1'800'000'000'000);
  std::function<int64_t()> fn() const {
    return [n = now] { return n->load(); };
  }
  void Advance(int64_t ms) { *now += ms; }
};

// Calls `start(callback)` and waits for the callback's result.
template <class T, class Start>
T Wait(Start start) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  start([p](T v) { p->set_value(std::move(v)); });
  return f.get();
}

}  // namespace orrery::hub::testing
