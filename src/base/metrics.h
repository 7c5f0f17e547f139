// Process metrics in the Prometheus text exposition format (served at /metrics).
//
// Counters, gauges and histograms are created once (at component start-up) and updated
// lock-free from any thread; the references returned stay valid for the registry's
// lifetime. Values that are cheaper to read on demand (queue depths, sizes on disk) are
// reported by collectors, called under the registry lock while rendering.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orrery::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  // REQUIRES: bounds strictly increasing (upper bounds of the buckets; +Inf is implicit).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Bucket presets: latencies in seconds from 50 µs to 10 s; sizes in bytes from 64 B to 16 MiB.
std::vector<double> LatencyBuckets();
std::vector<double> SizeBuckets();

// Receives on-demand values from collectors.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Gauge(std::string_view name, std::string_view help, const Labels& labels,
                     double value) = 0;
  virtual void Counter(std::string_view name, std::string_view help, const Labels& labels,
                       double value) = 0;
};

class Registry {
 public:
  using Collector = std::function<void(Sink&)>;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the series for (name, labels), creating it on first use. Thread-safe.
  // REQUIRES: a name is always used with the same kind (counter, gauge or histogram).
  metrics::Counter& GetCounter(std::string_view name, std::string_view help, Labels labels = {});
  metrics::Gauge& GetGauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& GetHistogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                          Labels labels = {});

  // Adds a collector; returns an id for RemoveCollector. The collector must not call back into
  // the registry.
  uint64_t AddCollector(Collector c);
  void RemoveCollector(uint64_t id);

  // The whole registry in Prometheus text format 0.0.4.
  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;
    std::unique_ptr<metrics::Counter> counter;
    std::unique_ptr<metrics::Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Kind kind;
    std::string help;
    std::vector<std::unique_ptr<Series>> series;
  };
  Series& GetSeries(std::string_view name, std::string_view help, Kind kind, Labels labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  std::map<uint64_t, Collector> collectors_;
  uint64_t next_collector_ = 1;
};

// Removes its collector when destroyed.
class ScopedCollector {
 public:
  ScopedCollector() = default;
  ScopedCollector(Registry& registry, Registry::Collector c)
      : registry_(&registry), id_(registry.AddCollector(std::move(c))) {}
  ScopedCollector(ScopedCollector&& o) noexcept : registry_(o.registry_), id_(o.id_) {
    o.registry_ = nullptr;
  }
  ScopedCollector& operator=(ScopedCollector&& o) noexcept {
    if (this != &o) {
      Reset();
      registry_ = o.registry_;
      id_ = o.id_;
      o.registry_ = nullptr;
    }
    return *this;
  }
  ~ScopedCollector() { Reset(); }
  void Reset() {
    if (registry_) registry_->RemoveCollector(id_);
    registry_ = nullptr;
  }

 private:
  Registry* registry_ = nullptr;
  uint64_t id_ = 0;
};

}  // namespace orrery::metrics
