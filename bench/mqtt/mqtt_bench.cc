// bench/mqtt: Orrery's broker next to mosquitto (Debian package, default settings,
// persistence off), both on this machine, measured in the same run by one load driver built
// on Orrery's MQTT codec.
//
// Scenarios (as the broker issue defines them):
//   fan-in   N publishers (QoS 1) → 1 subscriber. Orrery's subscriber holds a persistent
//            session, so every message is stored with fsync group commit before its PUBACK.
//   pairs    N publisher/subscriber pairs, QoS 1, one topic per pair.
//   fan-out  1 publisher → N subscribers, QoS 1.
//   idle     M idle connections: broker memory per connection.
// Each prints msg/s, p50/p99 publish→receive latency and the broker's RSS, and the ratio
// Orrery / mosquitto. Usage: mqtt_bench [--quick] [--seconds S] [--clients N] [--idle M]
//                                       [--orrery PATH] [--only fan-in,pairs,fan-out,idle]
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio.hpp>

#include "mqtt/codec.h"
#include "test/support/process.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace orrery;
using namespace orrery::mqtt;
using Clock = std::chrono::steady_clock;

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Stats {
  std::atomic<uint64_t> received{0};
  std::atomic<bool> measuring{false};
  std::vector<uint32_t> latencies_us;  // only touched on the driver thread
  void Record(int64_t sent_ns) {
    if (!measuring) return;
    received.fetch_add(1, std::memory_order_relaxed);
    latencies_us.push_back(static_cast<uint32_t>(std::max<int64_t>(0, NowNs() - sent_ns) / 1000));
  }
};

// One MQTT client connection on the driver's io_context.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, Stats& stats, std::string id, bool clean, std::string source)
      : sock_(io), stats_(stats), id_(std::move(id)), clean_(clean), source_(std::move(source)) {}

  std::function<void()> on_ready;  // after CONNACK (and SUBACK if subscribing)
  std::string subscribe;           // filter to subscribe to, if any
  std::string topic;               // where Publish() sends
  size_t window = 0;               // QoS 1 publishes kept in flight (0 = not a publisher)
  size_t payload = 64;

  void Start(uint16_t port) {
    boost::system::error_code ec;
    sock_.open(tcp::v4(), ec);
    if (!source_.empty()) sock_.bind({asio::ip::make_address(source_), 0}, ec);
    sock_.async_connect({asio::ip::make_address("127.0.0.1"), port},
                        [self = shared_from_this()](const boost::system::error_code& e) {
                          if (e) return self->Fail("connect: " + e.message());
                          self->sock_.set_option(tcp::no_delay(true));
                          Connect c;
                          c.client_id = self->id_;
                          c.clean_start = self->clean_;
                          c.keep_alive = 600;
                          self->Send(c);
                          self->Read();
                        });
  }
  void StartPublishing() {
    publishing_ = true;
    while (inflight_ < window)
      PublishOne();
    Flush();
  }
  void StopPublishing() { publishing_ = false; }
  bool ready() const { return ready_; }
  bool failed() const { return failed_; }

 private:
  void Fail(const std::string& why) {
    if (!failed_) fmt::print(stderr, "client {}: {}\n", id_, why);
    failed_ = true;
  }
  void Send(const Packet& p) {
    Encode(p, Version::k311, out_);
    Flush();
  }
  void PublishOne() {
    std::string body(payload, 'x');
    int64_t now = NowNs();
    std::memcpy(body.data(), &now, sizeof now);
    next_id_ = next_id_ == 0xFFFF ? 1 : next_id_ + 1;
    EncodePublish(out_, Version::k311, topic, body, 1, false, false, next_id_, nullptr);
    ++inflight_;
  }
  void Flush() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    asio::async_write(sock_, asio::buffer(wbuf_),
                      [self = shared_from_this()](const boost::system::error_code& e, size_t) {
                        self->writing_ = false;
                        self->wbuf_.clear();
                        if (e) return self->Fail("write: " + e.message());
                        self->Flush();
                      });
  }
  void Read() {
    size_t old = in_.size();
    in_.resize(old + 16384);
    sock_.async_read_some(
        asio::buffer(in_.data() + old, 16384),
        [self = shared_from_this(), old](const boost::system::error_code& e, size_t n) {
          self->in_.resize(old + (e ? 0 : n));
          if (e) return self->Fail("read: " + e.message());
          self->Parse();
          self->Read();
        });
  }
  void Parse() {
    size_t pos = 0;
    while (true) {
      Packet p;
      size_t used = 0;
      DecodeError err;
      auto st = Decode(std::string_view(in_).substr(pos), Version::k311, {}, p, used, err);
      if (st == DecodeStatus::kNeedMore) break;
      if (st == DecodeStatus::kError) return Fail("decode: " + err.message);
      pos += used;
      Handle(p);
    }
    in_.erase(0, pos);
    Flush();
  }
  void Handle(Packet& p) {
    if (auto* ca = std::get_if<Connack>(&p)) {
      if (ca->reason != Reason::kSuccess) return Fail("refused");
      if (!subscribe.empty()) {
        Subscribe s;
        s.packet_id = 1;
        s.filters = {{subscribe, {.qos = 1}}};
        Encode(s, Version::k311, out_);
      } else {
        Ready();
      }
    } else if (std::get_if<Suback>(&p)) {
      Ready();
    } else if (auto* pub = std::get_if<Publish>(&p)) {
      int64_t sent = 0;
      if (pub->payload.size() >= sizeof sent) std::memcpy(&sent, pub->payload.data(), sizeof sent);
      stats_.Record(sent);
      if (pub->qos == 1) {
        Ack a;
        a.type = PacketType::kPuback;
        a.packet_id = pub->packet_id;
        Encode(a, Version::k311, out_);
      }
    } else if (auto* ack = std::get_if<Ack>(&p); ack && ack->type == PacketType::kPuback) {
      --inflight_;
      if (publishing_) PublishOne();
    }
  }
  void Ready() {
    ready_ = true;
    if (on_ready) on_ready();
  }

  tcp::socket sock_;
  Stats& stats_;
  std::string id_;
  bool clean_;
  std::string source_;
  std::string in_, out_, wbuf_;
  bool writing_ = false, ready_ = false, failed_ = false, publishing_ = false;
  size_t inflight_ = 0;
  uint16_t next_id_ = 0;
};

struct Broker {
  std::string name;
  std::unique_ptr<testing::Process> proc;
  uint16_t port = 0;
  std::unique_ptr<testing::TempDir> dir;
};

int64_t RssKb(pid_t pid) {
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

Broker StartOrrery(const std::string& binary) {
  Broker b;
  b.name = "orrery";
  b.dir = std::make_unique<testing::TempDir>("bench-orrery");
  b.port = testing::FreePort();
  b.proc = testing::Process::Spawn(
      {binary, "serve", "--data-dir", b.dir->path().string(), "--https-port", "0", "--mqtts-port",
       "0", "--mqtt-port", std::to_string(b.port), "--twins-port", "0", "--log-level", "warn"},
      {"ORRERY_MQTT_MAX_QUEUED_MESSAGES=100000", "ORRERY_MQTT_MAX_INFLIGHT=1000"});
  // Ready once the port accepts: poll with a bounded number of short connects.
  for (int i = 0; i < 500; ++i) {
    asio::io_context io;
    tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), b.port}, ec);
    if (!ec) return b;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  fmt::print(stderr, "orrery did not start:\n{}\n", b.proc->output());
  std::exit(1);
}

Broker StartMosquitto() {
  Broker b;
  b.name = "mosquitto";
  b.dir = std::make_unique<testing::TempDir>("bench-mosquitto");
  b.port = testing::FreePort();
  auto conf = b.dir->path() / "mosquitto.conf";
  // Default settings apart from what the comparison needs: a loopback listener, anonymous
  // clients, and queues as deep as Orrery's for this run. Persistence is off by default.
  std::ofstream(conf) << "listener " << b.port << " 127.0.0.1\nallow_anonymous true\n"
                      << "max_queued_messages 100000\nmax_inflight_messages 1000\n"
                      << "log_dest none\n";
  b.proc = testing::Process::Spawn({"mosquitto", "-c", conf.string()});
  for (int i = 0; i < 500; ++i) {
    asio::io_context io;
    tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), b.port}, ec);
    if (!ec) return b;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  fmt::print(stderr, "mosquitto did not start:\n{}\n", b.proc->output());
  std::exit(1);
}

void Stop(Broker& b) {
  b.proc->Signal(SIGKILL);
  b.proc->Wait();
}

struct Result {
  double msgs_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  int64_t rss_kb = 0;
  double kb_per_conn = 0;
  bool ok = true;
};

struct Options {
  double seconds = 5;
  size_t clients = 1000;
  size_t idle = 50000;
  std::string orrery;
  std::vector<std::string> only;
};

// Runs a load scenario against a started broker.
Result RunLoad(Broker& broker, const std::string& scenario, const Options& o) {
  asio::io_context io;
  Stats stats;
  std::vector<std::shared_ptr<Client>> subs, pubs;
  size_t n = o.clients;
  size_t want_ready = 0;
  size_t ready = 0;
  auto on_ready = [&] { ++ready; };
  auto make = [&](std::string id, bool clean) {
    auto c = std::make_shared<Client>(io, stats, std::move(id), clean,
                                      fmt::format("127.0.0.{}", 2 + (want_ready % 8)));
    c->on_ready = on_ready;
    ++want_ready;
    return c;
  };
  if (scenario == "fan-in") {
    // The subscriber's persistent session makes Orrery store every message durably.
    auto s = make("fanin-sub", /*clean=*/false);
    s->subscribe = "fanin/+";
    subs.push_back(s);
    for (size_t i = 0; i < n; ++i) {
      auto p = make(fmt::format("fanin-pub-{}", i), true);
      p->topic = fmt::format("fanin/{}", i);
      p->window = 4;
      pubs.push_back(p);
    }
  } else if (scenario == "pairs") {
    for (size_t i = 0; i < n; ++i) {
      auto s = make(fmt::format("pair-sub-{}", i), true);
      s->subscribe = fmt::format("pair/{}", i);
      subs.push_back(s);
      auto p = make(fmt::format("pair-pub-{}", i), true);
      p->topic = fmt::format("pair/{}", i);
      p->window = 4;
      pubs.push_back(p);
    }
  } else if (scenario == "fan-out") {
    for (size_t i = 0; i < n; ++i) {
      auto s = make(fmt::format("fanout-sub-{}", i), true);
      s->subscribe = "fanout/all";
      subs.push_back(s);
    }
    auto p = make("fanout-pub", true);
    p->topic = "fanout/all";
    p->window = 8;
    pubs.push_back(p);
  }
  for (auto& c : subs)
    c->Start(broker.port);
  for (auto& c : pubs)
    c->Start(broker.port);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (ready < want_ready && Clock::now() < deadline)
    io.run_for(std::chrono::milliseconds(50));
  Result r;
  if (ready < want_ready) {
    fmt::print(stderr, "{}: only {}/{} clients ready\n", broker.name, ready, want_ready);
    r.ok = false;
    return r;
  }
  for (auto& p : pubs)
    p->StartPublishing();
  io.run_for(std::chrono::milliseconds(1000));  // warm-up
  stats.latencies_us.reserve(1 << 22);
  stats.measuring = true;
  auto start = Clock::now();
  io.run_for(std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000)));
  stats.measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  r.rss_kb = RssKb(broker.proc->pid());
  for (auto& p : pubs)
    p->StopPublishing();
  r.msgs_per_s = static_cast<double>(stats.received) / elapsed;
  auto& l = stats.latencies_us;
  if (!l.empty()) {
    std::sort(l.begin(), l.end());
    r.p50_ms = l[l.size() / 2] / 1000.0;
    r.p99_ms = l[std::min(l.size() - 1, l.size() * 99 / 100)] / 1000.0;
  }
  for (auto& c : subs)
    r.ok = r.ok && !c->failed();
  for (auto& c : pubs)
    r.ok = r.ok && !c->failed();
  return r;
}

Result RunIdle(Broker& broker, const Options& o) {
  asio::io_context io;
  Stats stats;
  int64_t before = RssKb(broker.proc->pid());
  std::vector<std::shared_ptr<Client>> clients;
  size_t ready = 0;
  clients.reserve(o.idle);
  // Connect in waves so the listen backlog never overflows.
  for (size_t i = 0; i < o.idle; ++i) {
    auto c = std::make_shared<Client>(io, stats, fmt::format("idle-{}", i), true,
                                      fmt::format("127.0.0.{}", 2 + (i % 8)));
    c->on_ready = [&] { ++ready; };
    c->Start(broker.port);
    clients.push_back(c);
    if (i % 500 == 499) {
      auto until = Clock::now() + std::chrono::seconds(10);
      while (ready < i + 1 && Clock::now() < until)
        io.run_for(std::chrono::milliseconds(5));
    }
  }
  auto until = Clock::now() + std::chrono::seconds(30);
  while (ready < o.idle && Clock::now() < until)
    io.run_for(std::chrono::milliseconds(20));
  io.run_for(std::chrono::milliseconds(500));
  Result r;
  r.rss_kb = RssKb(broker.proc->pid());
  r.kb_per_conn = static_cast<double>(r.rss_kb - before) / static_cast<double>(o.idle);
  r.ok = ready == o.idle;
  if (!r.ok)
    fmt::print(stderr, "{}: only {}/{} idle clients connected\n", broker.name, ready, o.idle);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.orrery = (std::filesystem::path(argv[0]).parent_path() / "../../apps/orrery/orrery").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--quick") {
      o.seconds = 2;
      o.clients = 200;
      o.idle = 5000;
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--clients") {
      o.clients = std::stoul(next());
    } else if (a == "--idle") {
      o.idle = std::stoul(next());
    } else if (a == "--orrery") {
      o.orrery = next();
    } else if (a == "--only") {
      std::string v = next();
      size_t start = 0;
      while (start <= v.size()) {
        size_t comma = v.find(',', start);
        o.only.push_back(v.substr(start, comma == std::string::npos ? comma : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      fmt::print(stderr,
                 "usage: mqtt_bench [--quick] [--seconds S] [--clients N] [--idle M] "
                 "[--orrery PATH] [--only fan-in,pairs,fan-out,idle]\n");
      return 2;
    }
  }
  if (::access("/usr/sbin/mosquitto", X_OK) != 0) {
    fmt::print(stderr, "mosquitto is not installed (scripts/install-deps installs it)\n");
    return 1;
  }
  // Many sockets for the idle test: raise the descriptor limit for us and the brokers.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  // Root (CAP_SYS_RESOURCE) may also raise the hard limit; the brokers inherit it.
  rlimit wanted{o.idle + 4096, std::max<rlim_t>(rl.rlim_max, o.idle + 4096)};
  if (setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  // Each idle connection costs one descriptor here and one in the broker.
  if (rl.rlim_cur != RLIM_INFINITY && o.idle + 1000 > rl.rlim_cur) {
    size_t fit = rl.rlim_cur > 2000 ? static_cast<size_t>(rl.rlim_cur) - 1000 : 1000;
    fmt::print(stderr, "note: {} idle connections exceed the descriptor limit {}; using {}\n",
               o.idle, rl.rlim_cur, fit);
    o.idle = fit;
  }
  ::signal(SIGPIPE, SIG_IGN);

  fmt::print(
      "MQTT benchmark: {} s per load scenario, {} clients, {} idle connections, "
      "{} CPU cores\n\n",
      o.seconds, o.clients, o.idle, std::thread::hardware_concurrency());
  fmt::print("{:<9} {:<10} {:>12} {:>9} {:>9} {:>10}\n", "scenario", "broker", "msg/s", "p50 ms",
             "p99 ms", "RSS MiB");
  std::vector<std::string> scenarios = {"fan-in", "pairs", "fan-out", "idle"};
  for (auto& sc : scenarios) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), sc) == o.only.end()) continue;
    Result res[2];
    for (int which = 0; which < 2; ++which) {
      Broker b = which == 0 ? StartOrrery(o.orrery) : StartMosquitto();
      res[which] = sc == "idle" ? RunIdle(b, o) : RunLoad(b, sc, o);
      Stop(b);
      const Result& r = res[which];
      if (sc == "idle") {
        fmt::print("{:<9} {:<10} {:>12} {:>9} {:>9} {:>10.1f}   {:.2f} KiB/connection{}\n", sc,
                   b.name, "-", "-", "-", r.rss_kb / 1024.0, r.kb_per_conn,
                   r.ok ? "" : " (FAILED)");
      } else {
        fmt::print("{:<9} {:<10} {:>12.0f} {:>9.2f} {:>9.2f} {:>10.1f}{}\n", sc, b.name,
                   r.msgs_per_s, r.p50_ms, r.p99_ms, r.rss_kb / 1024.0, r.ok ? "" : " (FAILED)");
      }
      std::fflush(stdout);
    }
    if (sc == "idle") {
      fmt::print("{:<9} ratio      memory per connection orrery/mosquitto = {:.2f}\n\n", sc,
                 res[0].kb_per_conn / std::max(0.001, res[1].kb_per_conn));
    } else {
      fmt::print(
          "{:<9} ratio      throughput orrery/mosquitto = {:.2f}x, p99 orrery/mosquitto = "
          "{:.2f}\n\n",
          sc, res[0].msgs_per_s / std::max(1.0, res[1].msgs_per_s),
          res[0].p99_ms / std::max(0.001, res[1].p99_ms));
    }
  }
  return 0;
}
