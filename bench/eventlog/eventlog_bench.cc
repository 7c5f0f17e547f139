// Event log benchmark: durable appends/s and MB/s against the disk's own limit, in one run.
//
//   eventlog_bench [--quick] [--dir <path>] [--threads <n>] [--partitions <n>]
//
// 1. The disk's limit: sequential writes of a fixed batch size, each followed by fdatasync,
//    into files in <dir> (rolled every 64 MiB like segments), for a sweep of batch sizes.
// 2. For 256-byte and 1-KiB records (on disk: 24-byte header + encoded message), producer
//    threads append as fast as backpressure lets them and the log group-commits, in slices;
//    after each slice the log drains and the disk alone is measured for as long at exactly
//    the mean bytes per group commit the log just used. We print records/s, MB/s and the
//    ratio log MB/s / disk MB/s over all slices (the brief's target: >= 80%).
// Files are deleted only at the end (see MeasureDisk). Default <dir>: the system temp dir.
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "eventlog/event_log.h"
#include "eventlog/format.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace el = orrery::eventlog;

struct Config {
  bool quick = false;
  std::filesystem::path dir = std::filesystem::temp_directory_path();
  int threads = 4;
  uint32_t partitions = 4;
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string FsType(const std::filesystem::path& p) {
  struct statfs s;
  if (::statfs(p.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    default:
      return "fs-0x" + std::to_string(static_cast<unsigned long>(s.f_type));
  }
}

struct DiskResult {
  double mb_per_s = 0;
  double syncs_per_s = 0;
};

// Sequential write of `batch` bytes + fdatasync, repeated for `duration`, files rolled at
// 64 MiB like segments. Files are deleted only at the end of the whole run: on a filesystem
// mounted with `discard`, deleting gigabytes issues TRIMs that disturb the next measurement.
DiskResult MeasureDisk(const std::filesystem::path& dir, size_t batch, Clock::duration duration) {
  constexpr uint64_t kRoll = 64ull << 20;
  static int run = 0;
  std::filesystem::create_directories(dir);
  std::string prefix = "disk" + std::to_string(run++) + "-";
  std::string data(batch, 'x');
  int file_no = 0, fd = -1;
  uint64_t in_file = kRoll;
  uint64_t total = 0, syncs = 0;
  auto start = Clock::now();
  while (Clock::now() - start < duration) {
    if (in_file + batch > kRoll) {
      if (fd >= 0) ::close(fd);
      auto path = dir / (prefix + std::to_string(file_no++));
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) {
        std::perror("open");
        std::exit(1);
      }
      in_file = 0;
    }
    size_t done = 0;
    while (done < batch) {
      ssize_t n = ::write(fd, data.data() + done, batch - done);
      if (n <= 0) {
        std::perror("write");
        std::exit(1);
      }
      done += static_cast<size_t>(n);
    }
    ::fdatasync(fd);
    in_file += batch;
    total += batch;
    ++syncs;
  }
  double s = Seconds(Clock::now() - start);
  if (fd >= 0) ::close(fd);
  return {static_cast<double>(total) / s / 1e6, static_cast<double>(syncs) / s};
}

// "0000".."0999", so that producers change a device id without formatting.
const auto kDeviceDigits = [] {
  std::vector<std::array<char, 4>> digits(1000);
  for (int i = 0; i < 1000; ++i) {
    digits[static_cast<size_t>(i)] = {
        static_cast<char>('0' + i / 1000), static_cast<char>('0' + i / 100 % 10),
        static_cast<char>('0' + i / 10 % 10), static_cast<char>('0' + i % 10)};
  }
  return digits;
}();

// A message whose record (header + encoding) is exactly `record_bytes` long.
el::Message MessageOfRecordSize(size_t record_bytes) {
  el::Message m;
  m.system.connection_device_id = "device-0000";
  m.system.message_source = "Telemetry";
  m.system.content_type = "application/json";
  for (size_t body = 0; body < record_bytes; ++body) {
    m.body.assign(body, 'x');
    if (el::format::kRecordHeaderSize + el::EncodedSize(m) >= record_bytes) break;
  }
  return m;
}

struct Slices {
  uint64_t records = 0, bytes = 0, commits = 0, fsyncs = 0;
  double log_seconds = 0, fsync_seconds = 0;
  uint64_t disk_bytes = 0;
  double disk_seconds = 0;
  double min_ratio = 1e9, max_ratio = 0;
};

// Producers append as fast as backpressure lets them, in slices; between two slices they
// pause, the log drains, and the disk is measured at the batch size the log just used.
// Interleaving matters on disks whose speed drifts (burst credits, host caches): both sides
// of the ratio then see the same disk.
Slices MeasureLog(const Config& cfg, size_t record_bytes, Clock::duration warmup,
                  Clock::duration slice, int slices, size_t* body_bytes) {
  static int run = 0;
  auto dir = cfg.dir / ("log" + std::to_string(run++));
  orrery::metrics::Registry registry;
  el::Options options;
  options.partitions = cfg.partitions;
  options.metrics = &registry;
  auto opened = el::EventLog::Open(dir, options);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().ToString().c_str());
    std::exit(1);
  }
  auto& log = **opened;
  el::Message tmpl = MessageOfRecordSize(record_bytes);
  *body_bytes = tmpl.body.size();

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> failures{0};
  std::mutex mu;
  std::condition_variable cv;
  uint64_t generation = 0;  // bumped by writable callbacks and (un)pausing; guarded by mu
  bool paused = false;      // guarded by mu
  std::vector<std::thread> producers;
  for (int t = 0; t < cfg.threads; ++t) {
    producers.emplace_back([&, t] {
      el::Message m = tmpl;
      auto done = [&failures](const orrery::Result<el::Appended>& r) {
        if (!r) failures.fetch_add(1, std::memory_order_relaxed);
      };
      uint64_t device = static_cast<uint64_t>(t);
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t seen;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !paused || stop.load(); });
          seen = generation;
        }
        // 1000 devices with equal-length ids, so that every record has the same size.
        device = (device + static_cast<uint64_t>(cfg.threads)) % 1000;
        std::memcpy(m.system.connection_device_id.data() + 7, kDeviceDigits[device].data(), 4);
        for (int burst = 0; burst < 256; ++burst) {
          auto r = log.Append(m, done);
          if (r) continue;
          if (!r.error().Is(el::Errc::kBackpressure)) {
            std::fprintf(stderr, "append: %s\n", r.error().ToString().c_str());
            std::exit(1);
          }
          if (log.NotifyWhenWritable([&] {
                std::lock_guard lock(mu);
                ++generation;
                cv.notify_all();
              })) {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return generation != seen; });
          }
          break;
        }
      }
    });
  }
  auto set_paused = [&](bool p) {
    std::lock_guard lock(mu);
    paused = p;
    ++generation;
    cv.notify_all();
  };
  auto drain = [&] {
    set_paused(true);
    while (log.pending_bytes() > 0)
      std::this_thread::sleep_for(1ms);
  };

  auto& fsync_hist =
      registry.GetHistogram("orrery_eventlog_fsync_seconds", "", orrery::metrics::LatencyBuckets());
  std::this_thread::sleep_for(warmup);
  Slices out;
  for (int i = 0; i < slices; ++i) {
    auto h0 = fsync_hist.Read();
    auto s0 = log.commit_stats();
    auto t0 = Clock::now();
    std::this_thread::sleep_for(slice);
    auto s1 = log.commit_stats();
    auto t1 = Clock::now();
    auto h1 = fsync_hist.Read();
    drain();
    double secs = Seconds(t1 - t0);
    uint64_t bytes = s1.bytes - s0.bytes, commits = s1.commits - s0.commits;
    out.records += s1.records - s0.records;
    out.bytes += bytes;
    out.commits += commits;
    out.fsyncs += h1.count - h0.count;
    out.fsync_seconds += h1.sum - h0.sum;
    out.log_seconds += secs;
    size_t batch = commits ? static_cast<size_t>(bytes / commits) : 4096;
    auto d = MeasureDisk(cfg.dir / "disk", std::max<size_t>(batch, 4096), slice);
    out.disk_bytes += static_cast<uint64_t>(d.mb_per_s * 1e6 * Seconds(slice));
    out.disk_seconds += Seconds(slice);
    double ratio = (static_cast<double>(bytes) / secs / 1e6) / d.mb_per_s;
    out.min_ratio = std::min(out.min_ratio, ratio);
    out.max_ratio = std::max(out.max_ratio, ratio);
    set_paused(false);
  }
  stop = true;
  set_paused(false);
  for (auto& p : producers)
    p.join();
  log.Close();
  if (failures.load() > 0) {
    std::fprintf(stderr, "%llu appends failed\n", static_cast<unsigned long long>(failures.load()));
    std::exit(1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      cfg.quick = true;
    } else if (a == "--dir" && i + 1 < argc) {
      cfg.dir = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      cfg.threads = std::atoi(argv[++i]);
    } else if (a == "--partitions" && i + 1 < argc) {
      cfg.partitions = static_cast<uint32_t>(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--dir <path>] [--threads <n>] [--partitions <n>]\n",
                   argv[0]);
      return 2;
    }
  }
  cfg.dir /= "orrery-eventlog-bench-" + std::to_string(::getpid());
  std::filesystem::create_directories(cfg.dir);

  struct utsname u;
  ::uname(&u);
  std::printf("machine: %s, %u cores, %s %s; data in %s (%s)\n", CpuModel().c_str(),
              std::thread::hardware_concurrency(), u.sysname, u.release, cfg.dir.c_str(),
              FsType(cfg.dir).c_str());
  std::printf("producers: %d threads, %u partitions, durability fsync%s\n\n", cfg.threads,
              cfg.partitions, cfg.quick ? " (--quick)" : "");

  auto sweep_time = cfg.quick ? 250ms : 1000ms;
  auto warmup = cfg.quick ? 200ms : 500ms;
  auto slice = cfg.quick ? 400ms : 1500ms;
  int slices = cfg.quick ? 2 : 4;

  std::printf("disk limit: sequential write + fdatasync, one file\n");
  std::printf("  %12s %12s %12s\n", "batch", "MB/s", "fsyncs/s");
  for (size_t batch : {64u << 10, 256u << 10, 1u << 20, 4u << 20, 16u << 20}) {
    auto d = MeasureDisk(cfg.dir / "disk", batch, sweep_time);
    std::printf("  %9zu KiB %12.1f %12.0f\n", batch >> 10, d.mb_per_s, d.syncs_per_s);
  }

  std::printf(
      "\nevent log: durable appends with group commit, in %d slices of %.1f s, each "
      "followed by\nthe disk alone at the batch size the log just used\n",
      slices, Seconds(slice));
  std::printf("  %8s %12s %10s %11s %10s %9s %10s %8s %11s\n", "record", "appends/s", "MB/s",
              "batch KiB", "rec/batch", "fsync ms", "disk MB/s", "ratio", "slices");
  std::string bodies;
  for (size_t record : {256u, 1024u}) {
    size_t body = 0;
    auto r = MeasureLog(cfg, record, warmup, slice, slices, &body);
    bodies += (bodies.empty() ? "" : ", ") + std::to_string(record) + " B records carry a " +
              std::to_string(body) + " B body";
    double mb = static_cast<double>(r.bytes) / r.log_seconds / 1e6;
    double disk = static_cast<double>(r.disk_bytes) / r.disk_seconds / 1e6;
    double batch = r.commits ? static_cast<double>(r.bytes) / static_cast<double>(r.commits) : 0;
    std::printf("  %6zu B %12.0f %10.1f %11.1f %10.0f %9.2f %10.1f %7.0f%% %4.0f-%.0f%%\n", record,
                static_cast<double>(r.records) / r.log_seconds, mb, batch / 1024,
                r.commits ? static_cast<double>(r.records) / static_cast<double>(r.commits) : 0,
                r.fsyncs ? r.fsync_seconds / static_cast<double>(r.fsyncs) * 1e3 : 0, disk,
                100 * mb / disk, 100 * r.min_ratio, 100 * r.max_ratio);
    std::fflush(stdout);
  }
  std::printf(
      "\nrecord = 24-byte header + encoded message (device id, source, content type, "
      "body);\n%s. ratio = log MB/s / disk MB/s over all slices, then its range per "
      "slice.\n",
      bodies.c_str());
  std::filesystem::remove_all(cfg.dir);
  return 0;
}
