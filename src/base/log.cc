#include "base/log.h"

#include <mutex>
#include <unordered_map>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace orrery::log {
namespace {

constexpr const char* kHumanPattern = "%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %v";

void AppendJsonString(spdlog::memory_buf_t& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// One JSON object per line: {"ts":"…Z","level":"info","component":"mqtt","msg":"…"}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(micros / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    fmt::format_to(std::back_inserter(dest),
                   "{{\"ts\":\"{:%Y-%m-%dT%H:%M:%S}.{:06}Z\",\"level\":", tm, micros % 1000000);
    auto level = spdlog::level::to_string_view(msg.level);
    AppendJsonString(dest, std::string_view(level.data(), level.size()));
    dest.append(std::string_view(",\"component\":"));
    AppendJsonString(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    dest.append(std::string_view(",\"msg\":"));
    AppendJsonString(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

struct State {
  std::mutex mu;
  spdlog::sink_ptr sink;
  spdlog::level::level_enum level = spdlog::level::info;
  std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> loggers;
};

State& GetState() {
  static State* state = [] {
    auto* s = new State();  // never destroyed: loggers stay usable during static teardown
    s->sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s->sink->set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kHumanPattern, spdlog::pattern_time_type::utc));
    return s;
  }();
  return *state;
}

}  // namespace

Result<Format> ParseFormat(std::string_view text) {
  if (text == "human") return Format::kHuman;
  if (text == "json") return Format::kJson;
  return Error(BaseErrc::kInvalidArgument,
               fmt::format("unknown log format '{}' (expected human or json)", text));
}

Status Init(const Options& options) {
  auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("unknown log level '{}' (expected trace, debug, info, warn, error, "
                             "critical or off)",
                             options.level));
  }
  State& s = GetState();
  std::lock_guard lock(s.mu);
  if (options.format == Format::kJson) {
    s.sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    s.sink->set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kHumanPattern, spdlog::pattern_time_type::utc));
  }
  s.level = level;
  for (auto& [name, logger] : s.loggers)
    logger->set_level(level);
  return Ok();
}

std::shared_ptr<spdlog::logger> Get(std::string_view component) {
  State& s = GetState();
  std::lock_guard lock(s.mu);
  auto it = s.loggers.find(std::string(component));
  if (it != s.loggers.end()) return it->second;
  auto logger = std::make_shared<spdlog::logger>(std::string(component), s.sink);
  logger->set_level(s.level);
  logger->flush_on(spdlog::level::warn);
  s.loggers.emplace(std::string(component), logger);
  return logger;
}

}  // namespace orrery::log
