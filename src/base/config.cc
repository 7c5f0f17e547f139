#include "base/config.h"

#include <charconv>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "base/strings.h"

namespace orrery::config {
namespace {

using strings::Trim;

Result<int64_t> ParseInt(std::string_view text) {
  text = Trim(text);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    return Error(BaseErrc::kParse, "not an integer");
  }
  return v;
}

// Splits "<number><unit>" and multiplies by the unit's factor.
Result<int64_t> ParseScaled(std::string_view text,
                            std::initializer_list<std::pair<std::string_view, int64_t>> units,
                            bool unit_required) {
  text = Trim(text);
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '-'))
    ++i;
  auto number = ParseInt(text.substr(0, i));
  if (!number) return number.error();
  std::string_view unit = Trim(text.substr(i));
  if (unit.empty()) {
    if (unit_required) return Error(BaseErrc::kParse, "missing unit");
    return *number;
  }
  for (auto& [name, factor] : units) {
    if (unit == name) {
      if (*number != 0 && (*number > INT64_MAX / factor || *number < INT64_MIN / factor)) {
        return Error(BaseErrc::kParse, "out of range");
      }
      return *number * factor;
    }
  }
  return Error(BaseErrc::kParse, fmt::format("unknown unit '{}'", unit));
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kString:
      return "a string";
    case Type::kInt:
      return "an integer";
    case Type::kBool:
      return "true or false";
    case Type::kStringList:
      return "a list of strings";
    case Type::kDuration:
      return "a duration such as 30s, 5m, 12h or 7d";
    case Type::kSize:
      return "a size such as 512, 64KiB or 256MiB";
  }
  return "?";
}

std::string RangeText(const Option& o) {
  std::string lo = o.min == std::numeric_limits<int64_t>::min() ? "" : std::to_string(o.min);
  std::string hi = o.max == std::numeric_limits<int64_t>::max() ? "" : std::to_string(o.max);
  if (lo.empty() && hi.empty()) return "";
  return fmt::format(" in {}..{}", lo, hi);
}

Error ValueError(const Option& o, std::string_view got, std::string_view origin,
                 std::string_view detail = {}) {
  std::string expect = TypeName(o.type);
  expect += RangeText(o);
  if (!o.choices.empty()) expect = fmt::format("one of {}", fmt::join(o.choices, ", "));
  return Error(BaseErrc::kInvalidArgument,
               fmt::format("{}: expected {}, got '{}'{} (from {})", o.key, expect, got,
                           detail.empty() ? "" : fmt::format(" ({})", detail), origin));
}

// Parses the textual form used by defaults, environment variables and flags.
Result<Value> ParseText(const Option& o, std::string_view text, std::string_view origin) {
  switch (o.type) {
    case Type::kString:
      if (!o.choices.empty()) {
        bool ok = false;
        for (auto& c : o.choices)
          ok = ok || c == text;
        if (!ok) return ValueError(o, text, origin);
      }
      return Value(std::string(text));
    case Type::kBool: {
      if (text == "true" || text == "1" || text == "yes" || text == "on") return Value(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return Value(false);
      return ValueError(o, text, origin);
    }
    case Type::kStringList: {
      std::vector<std::string> items;
      std::string_view rest = text;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        auto item = Trim(rest.substr(0, comma));
        if (!item.empty()) items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      return Value(std::move(items));
    }
    case Type::kInt:
    case Type::kDuration:
    case Type::kSize: {
      Result<int64_t> v = o.type == Type::kInt        ? ParseInt(text)
                          : o.type == Type::kDuration ? ParseDurationMs(text)
                                                      : ParseSize(text);
      if (!v) return ValueError(o, text, origin, v.error().message());
      if (*v < o.min || *v > o.max) return ValueError(o, text, origin, "out of range");
      return Value(*v);
    }
  }
  return Error(BaseErrc::kInternal, "unhandled option type");
}

// Converts a TOML node to the option's value.
Result<Value> FromToml(const Option& o, const toml::node& node, std::string_view origin) {
  auto text_of = [&]() -> std::string {
    return node.visit([](auto&& n) {
      std::ostringstream os;
      os << n;
      return os.str();
    });
  };
  switch (o.type) {
    case Type::kString:
      if (auto s = node.value<std::string>(); s && node.is_string()) {
        return ParseText(o, *s, origin);
      }
      break;
    case Type::kBool:
      if (auto b = node.value<bool>(); b && node.is_boolean()) return Value(*b);
      break;
    case Type::kStringList:
      if (auto* arr = node.as_array()) {
        std::vector<std::string> items;
        for (auto& el : *arr) {
          if (!el.is_string()) return ValueError(o, text_of(), origin);
          items.push_back(*el.value<std::string>());
        }
        return Value(std::move(items));
      }
      break;
    case Type::kInt:
    case Type::kDuration:
    case Type::kSize:
      if (node.is_integer()) {
        int64_t v = *node.value<int64_t>();
        // Bare numbers are seconds for durations and bytes for sizes.
        if (o.type == Type::kDuration) {
          if (v > INT64_MAX / 1000 || v < INT64_MIN / 1000) return ValueError(o, text_of(), origin);
          v *= 1000;
        }
        if (v < o.min || v > o.max) return ValueError(o, text_of(), origin, "out of range");
        return Value(v);
      }
      if (node.is_string() && o.type != Type::kInt) {
        return ParseText(o, *node.value<std::string>(), origin);
      }
      break;
  }
  return ValueError(o, text_of(), origin);
}

Status WalkToml(const Schema& schema, const toml::table& table, const std::string& prefix,
                const std::string& origin, std::map<std::string, Value>& out) {
  for (auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const Option* o = schema.Find(key)) {
      auto v = FromToml(*o, node, origin);
      if (!v) return v.error();
      out[key] = std::move(*v);
      continue;
    }
    if (auto* sub = node.as_table()) {
      // A table is fine if some option lives under it.
      bool known_prefix = false;
      for (auto& o : schema.options()) {
        known_prefix = known_prefix || o.key.rfind(key + ".", 0) == 0;
      }
      if (known_prefix) {
        ORRERY_TRY(WalkToml(schema, *sub, key, origin, out));
        continue;
      }
    }
    auto src = node.source().begin;
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("{}: line {}: unknown configuration key '{}' (see `orrery config "
                             "reference` for the valid keys)",
                             origin, src.line, key));
  }
  return Ok();
}

}  // namespace

Schema& Schema::Add(Option option) {
  options_.push_back(std::move(option));
  return *this;
}

const Option* Schema::Find(std::string_view key) const {
  for (auto& o : options_) {
    if (o.key == key) return &o;
  }
  return nullptr;
}

std::string Schema::EnvName(std::string_view key) {
  std::string env = "ORRERY_";
  for (char c : key) {
    env.push_back(c == '.' || c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  }
  return env;
}

std::string Schema::MarkdownReference() const {
  std::string out = "| key | environment | flag | default | meaning |\n|---|---|---|---|---|\n";
  for (auto& o : options_) {
    out += fmt::format("| `{}` | `{}` | {} | {} | {} |\n", o.key, EnvName(o.key),
                       o.flag.empty() ? "" : fmt::format("`--{}`", o.flag),
                       o.default_value.empty() ? "" : fmt::format("`{}`", o.default_value), o.help);
  }
  return out;
}

Result<Settings> Settings::Load(const Schema& schema, const Sources& sources) {
  Settings s;
  for (auto& o : schema.options()) {
    auto v = ParseText(o, o.default_value, "default");
    if (!v) return Error(BaseErrc::kInternal, "bad built-in default: " + v.error().message());
    s.entries_[o.key] = Entry{std::move(*v), "default"};
  }

  if (sources.file) {
    std::string origin = sources.file->string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*sources.file, ec)) {
      return Error(BaseErrc::kNotFound, fmt::format("config file {} not found", origin));
    }
    toml::table table;
    try {
      table = toml::parse_file(origin);
    } catch (const toml::parse_error& e) {
      return Error(BaseErrc::kParse,
                   fmt::format("{}: line {}, column {}: {}", origin, e.source().begin.line,
                               e.source().begin.column, e.description()));
    }
    std::map<std::string, Value> values;
    ORRERY_TRY(WalkToml(schema, table, "", origin, values));
    for (auto& [k, v] : values)
      s.entries_[k] = Entry{std::move(v), "file " + origin};
  }

  for (auto& [name, text] : sources.env) {
    if (name.rfind("ORRERY_", 0) != 0) continue;
    const Option* match = nullptr;
    for (auto& o : schema.options()) {
      if (Schema::EnvName(o.key) == name) match = &o;
    }
    if (!match) {
      s.unknown_env_.push_back(name);
      continue;
    }
    std::string origin = "env " + name;
    auto v = ParseText(*match, text, origin);
    if (!v) return v.error();
    s.entries_[match->key] = Entry{std::move(*v), origin};
  }

  for (auto& [key, text] : sources.flags) {
    const Option* o = schema.Find(key);
    if (!o) return Error(BaseErrc::kInternal, "flag for unknown key " + key);
    std::string origin = o->flag.empty() ? "flag" : "flag --" + o->flag;
    auto v = ParseText(*o, text, origin);
    if (!v) return v.error();
    s.entries_[key] = Entry{std::move(*v), origin};
  }
  return s;
}

Status Settings::Set(const Schema& schema, std::string_view key, std::string_view text,
                     std::string origin) {
  const Option* o = schema.Find(key);
  if (!o) return Error(BaseErrc::kNotFound, fmt::format("unknown configuration key '{}'", key));
  auto v = ParseText(*o, text, origin);
  if (!v) return v.error();
  entries_[std::string(key)] = Entry{std::move(*v), std::move(origin)};
  return Ok();
}

const Settings::Entry& Settings::Get(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    fmt::print(stderr, "internal error: configuration key '{}' is not in the schema\n", key);
    std::abort();
  }
  return it->second;
}

const std::string& Settings::String(std::string_view key) const {
  return std::get<std::string>(Get(key).value);
}
int64_t Settings::Int(std::string_view key) const {
  return std::get<int64_t>(Get(key).value);
}
bool Settings::Bool(std::string_view key) const {
  return std::get<bool>(Get(key).value);
}
const std::vector<std::string>& Settings::List(std::string_view key) const {
  return std::get<std::vector<std::string>>(Get(key).value);
}
const std::string& Settings::Origin(std::string_view key) const {
  return Get(key).origin;
}

Result<int64_t> ParseDurationMs(std::string_view text) {
  return ParseScaled(text,
                     {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}},
                     /*unit_required=*/true);
}

Result<int64_t> ParseSize(std::string_view text) {
  return ParseScaled(text,
                     {{"B", 1},
                      {"KiB", int64_t{1} << 10},
                      {"MiB", int64_t{1} << 20},
                      {"GiB", int64_t{1} << 30},
                      {"TiB", int64_t{1} << 40},
                      {"KB", 1000},
                      {"MB", 1000'000},
                      {"GB", 1000'000'000},
                      {"TB", 1000'000'000'000}},
                     /*unit_required=*/false);
}

}  // namespace orrery::config
