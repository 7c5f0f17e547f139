// Helpers shared by the eventlog unit tests.
#pragma once

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>

#include "eventlog/event_log.h"

namespace orrery::eventlog::testutil {

// A fresh directory removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("orrery-eventlog-" + name + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A manually advanced clock for Options::now_ms.
class FakeClock {
 public:
  explicit FakeClock(int64_t start_ms) : now_(start_ms) {}
  int64_t Now() const { return now_.load(); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }
  std::function<int64_t()> Fn() {
    return [this] { return Now(); };
  }

 private:
  std::atomic<int64_t> now_;
};

// Waits for completion callbacks (which run on the sync thread).
class Completions {
 public:
  AppendCallback Callback() {
    return [this](const Result<Appended>& r) {
      std::lock_guard lock(mu_);
      if (r) {
        ok_.push_back(*r);
      } else {
        errors_.push_back(r.error());
      }
      cv_.notify_all();
    };
  }
  // Waits until `n` callbacks ran in total (bounded by a generous deadline).
  bool WaitFor(size_t n, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ok_.size() + errors_.size() >= n; });
  }
  std::vector<Appended> ok() {
    std::lock_guard lock(mu_);
    return ok_;
  }
  std::vector<Error> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Appended> ok_;
  std::vector<Error> errors_;
};

inline Message TestMessage(const std::string& device, const std::string& body) {
  Message m;
  m.body = body;
  m.system.connection_device_id = device;
  m.system.message_source = "Telemetry";
  m.system.content_type = "application/json";
  m.properties = {{"k", "v"}};
  return m;
}

// Appends and waits for durability; returns the record's position.
inline Result<Appended> AppendSync(EventLog& log, const Message& m) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<Appended>> result;
  ORRERY_TRY(log.Append(m, [&](const Result<Appended>& r) {
    std::lock_guard lock(mu);
    result = r;
    cv.notify_all();
  }));
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  return *result;
}

// Reads everything durable in a partition from `position`.
inline std::vector<Event> ReadAll(EventLog& log, uint32_t partition,
                                  Position position = Position::Earliest(),
                                  uint64_t* skipped = nullptr) {
  std::vector<Event> events;
  auto reader = log.OpenReader(partition, position);
  if (!reader) return events;
  while (true) {
    auto batch = (*reader)->TryRead(1000);
    if (!batch) break;
    if (skipped) *skipped += batch->skipped;
    if (batch->events.empty() && batch->skipped == 0) break;
    for (auto& e : batch->events)
      events.push_back(std::move(e));
  }
  return events;
}

}  // namespace orrery::eventlog::testutil
