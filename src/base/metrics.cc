#include "base/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace orrery::metrics {
namespace {

void AppendEscaped(std::string& out, std::string_view v, bool label_value) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label_value) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

std::string FormatLabels(const Labels& labels, std::string_view extra_key = {},
                         std::string_view extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return {};
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view k, std::string_view v) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    AppendEscaped(out, v, true);
    out += '"';
  };
  for (auto& [k, v] : labels)
    add(k, v);
  if (!extra_key.empty()) add(extra_key, extra_value);
  out += '}';
  return out;
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

void Header(std::string& out, std::string_view name, std::string_view help, const char* type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendEscaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Collects on-demand values grouped by family so that each family gets one header.
class GroupingSink final : public Sink {
 public:
  void Gauge(std::string_view name, std::string_view help, const Labels& labels,
             double value) override {
    Add(name, help, "gauge", labels, value);
  }
  void Counter(std::string_view name, std::string_view help, const Labels& labels,
               double value) override {
    Add(name, help, "counter", labels, value);
  }
  void RenderTo(std::string& out) const {
    for (auto& [name, fam] : families_) {
      Header(out, name, fam.help, fam.type);
      out += fam.lines;
    }
  }

 private:
  struct Fam {
    std::string help;
    const char* type;
    std::string lines;
  };
  void Add(std::string_view name, std::string_view help, const char* type, const Labels& labels,
           double value) {
    auto [it, inserted] =
        families_.try_emplace(std::string(name), Fam{std::string(help), type, {}});
    it->second.lines += fmt::format("{}{} {}\n", name, FormatLabels(labels), FormatValue(value));
  }
  std::map<std::string, Fam> families_;
};

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

std::vector<double> SizeBuckets() {
  return {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};
}

Registry::Series& Registry::GetSeries(std::string_view name, std::string_view help, Kind kind,
                                      Labels labels) {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{kind, std::string(help), {}}).first;
  }
  for (auto& s : it->second.series) {
    if (s->labels == labels) return *s;
  }
  auto s = std::make_unique<Series>();
  s->labels = std::move(labels);
  it->second.series.push_back(std::move(s));
  return *it->second.series.back();
}

metrics::Counter& Registry::GetCounter(std::string_view name, std::string_view help,
                                       Labels labels) {
  Series& s = GetSeries(name, help, Kind::kCounter, std::move(labels));
  std::lock_guard lock(mu_);
  if (!s.counter) s.counter = std::make_unique<metrics::Counter>();
  return *s.counter;
}

metrics::Gauge& Registry::GetGauge(std::string_view name, std::string_view help, Labels labels) {
  Series& s = GetSeries(name, help, Kind::kGauge, std::move(labels));
  std::lock_guard lock(mu_);
  if (!s.gauge) s.gauge = std::make_unique<metrics::Gauge>();
  return *s.gauge;
}

Histogram& Registry::GetHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> bounds, Labels labels) {
  Series& s = GetSeries(name, help, Kind::kHistogram, std::move(labels));
  std::lock_guard lock(mu_);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

uint64_t Registry::AddCollector(Collector c) {
  std::lock_guard lock(mu_);
  uint64_t id = next_collector_++;
  collectors_.emplace(id, std::move(c));
  return id;
}

void Registry::RemoveCollector(uint64_t id) {
  std::lock_guard lock(mu_);
  collectors_.erase(id);
}

std::string Registry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (auto& [name, fam] : families_) {
    switch (fam.kind) {
      case Kind::kCounter:
        Header(out, name, fam.help, "counter");
        for (auto& s : fam.series) {
          out += fmt::format("{}{} {}\n", name, FormatLabels(s->labels), s->counter->Value());
        }
        break;
      case Kind::kGauge:
        Header(out, name, fam.help, "gauge");
        for (auto& s : fam.series) {
          out += fmt::format("{}{} {}\n", name, FormatLabels(s->labels), s->gauge->Value());
        }
        break;
      case Kind::kHistogram:
        Header(out, name, fam.help, "histogram");
        for (auto& s : fam.series) {
          auto snap = s->histogram->Read();
          for (size_t i = 0; i < snap.bounds.size(); ++i) {
            out += fmt::format("{}_bucket{} {}\n", name,
                               FormatLabels(s->labels, "le", FormatValue(snap.bounds[i])),
                               snap.cumulative[i]);
          }
          out += fmt::format("{}_bucket{} {}\n", name, FormatLabels(s->labels, "le", "+Inf"),
                             snap.count);
          out += fmt::format("{}_sum{} {}\n", name, FormatLabels(s->labels), FormatValue(snap.sum));
          out += fmt::format("{}_count{} {}\n", name, FormatLabels(s->labels), snap.count);
        }
        break;
    }
  }
  GroupingSink sink;
  for (auto& [id, c] : collectors_)
    c(sink);
  sink.RenderTo(out);
  return out;
}

}  // namespace orrery::metrics
