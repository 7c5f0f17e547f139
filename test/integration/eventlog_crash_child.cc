// Child process for eventlog_crash_test: appends under load from several threads and prints
// every acknowledged record, so that the parent can SIGKILL it at any moment and then check
// that everything acknowledged survived.
//
//   eventlog_crash_child <dir> <threads>
//
// Prints "ready <truncated bytes>" once the log is open, then one line per durable record,
// written from the completion callback (i.e. only after fdatasync covered it) and flushed:
//   ack <n> <partition> <sequence> <offset> <record bytes> <xxh64 of the body, hex>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <xxhash.h>

#include "eventlog/event_log.h"
#include "eventlog/format.h"

namespace {

using orrery::eventlog::Appended;
using orrery::eventlog::EncodedSize;
using orrery::eventlog::Errc;
using orrery::eventlog::EventLog;
using orrery::eventlog::Message;
using orrery::eventlog::Options;

// Must match CrashOptions() in eventlog_crash_test.cc.
Options CrashOptions() {
  Options o;
  o.partitions = 4;
  o.segment_size = 256 * 1024;  // roll often
  o.max_pending_bytes = 1 << 20;
  o.max_record_bytes = 16 * 1024;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <dir> <threads>\n", argv[0]);
    return 2;
  }
  auto opened = EventLog::Open(argv[1], CrashOptions());
  if (!opened) {
    std::printf("error %s\n", opened.error().ToString().c_str());
    return 1;
  }
  std::unique_ptr<EventLog> log = std::move(*opened);
  uint64_t truncated = 0;
  for (const auto& r : log->recovery())
    truncated += r.truncated_bytes;
  std::printf("ready %llu\n", static_cast<unsigned long long>(truncated));
  std::fflush(stdout);

  uint64_t acks = 0;  // only touched on the writer thread
  std::mutex mu;
  std::condition_variable writable;
  uint64_t writable_generation = 0;

  int threads = std::atoi(argv[2]);
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(::getpid() * 31 + t));
      for (uint64_t i = 0;; ++i) {
        Message m;
        m.system.connection_device_id = "dev-" + std::to_string(t) + "-" + std::to_string(i % 8);
        m.system.message_source = "Telemetry";
        m.body = "pid" + std::to_string(::getpid()) + "-t" + std::to_string(t) + "-" +
                 std::to_string(i) + "-";
        m.body.append(20 + rng() % 400, static_cast<char>('a' + rng() % 26));
        uint64_t hash = XXH64(m.body.data(), m.body.size(), 0);
        uint64_t record_bytes = orrery::eventlog::format::kRecordHeaderSize + EncodedSize(m);
        while (true) {
          uint64_t generation;
          {
            std::lock_guard lock(mu);
            generation = writable_generation;
          }
          auto r = log->Append(m, [&acks, hash, record_bytes](const orrery::Result<Appended>& a) {
            if (!a) {
              std::printf("failed %s\n", a.error().ToString().c_str());
              std::fflush(stdout);
              return;
            }
            std::printf("ack %llu %u %llu %llu %llu %016llx\n",
                        static_cast<unsigned long long>(++acks), a->partition,
                        static_cast<unsigned long long>(a->sequence),
                        static_cast<unsigned long long>(a->offset),
                        static_cast<unsigned long long>(record_bytes),
                        static_cast<unsigned long long>(hash));
            std::fflush(stdout);
          });
          if (r) break;
          if (!r.error().Is(Errc::kBackpressure)) {
            std::printf("error %s\n", r.error().ToString().c_str());
            std::fflush(stdout);
            std::_Exit(1);
          }
          bool registered = log->NotifyWhenWritable([&] {
            std::lock_guard lock(mu);
            ++writable_generation;
            writable.notify_all();
          });
          if (registered) {
            std::unique_lock lock(mu);
            writable.wait(lock, [&] { return writable_generation != generation; });
          }
        }
      }
    });
  }
  // The parent kills us; never outlive a parent that forgot to.
  std::this_thread::sleep_for(std::chrono::seconds(60));
  std::_Exit(3);
}
