#include "mqtt/topic.h"

#include <cstdint>

#include "base/strings.h"

namespace orrery::mqtt {

bool IsValidUtf8(std::string_view s) {
  // MQTT additionally forbids U+0000 in every UTF-8 string [MQTT-1.5.4-2].
  return s.find('\0') == std::string_view::npos && strings::IsValidUtf8(s);
}

bool IsValidTopicName(std::string_view topic) {
  if (topic.empty() || !IsValidUtf8(topic)) return false;
  return topic.find_first_of("+#") == std::string_view::npos;
}

namespace {

bool IsValidPlainFilter(std::string_view f) {
  if (f.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t slash = f.find('/', start);
    std::string_view level =
        f.substr(start, slash == std::string_view::npos ? f.npos : slash - start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) return false;
      if (level == "#" && slash != std::string_view::npos) return false;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace

SharedFilter SplitShared(std::string_view filter) {
  constexpr std::string_view kShare = "$share/";
  if (filter.substr(0, kShare.size()) != kShare) return {{}, filter};
  std::string_view rest = filter.substr(kShare.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {rest, {}};
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

bool IsValidTopicFilter(std::string_view filter) {
  if (filter.empty() || !IsValidUtf8(filter)) return false;
  if (filter.substr(0, 7) == "$share/") {
    auto s = SplitShared(filter);
    if (s.group.empty() || s.group.find_first_of("+#") != std::string_view::npos) return false;
    return IsValidPlainFilter(s.filter);
  }
  return IsValidPlainFilter(filter);
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  size_t fi = 0, ti = 0;
  while (true) {
    size_t fe = filter.find('/', fi);
    std::string_view fl = filter.substr(fi, fe == filter.npos ? filter.npos : fe - fi);
    if (fl == "#") return true;  // matches the parent level too ("a/#" matches "a")
    if (ti > topic.size()) {
      return false;
    }
    size_t te = topic.find('/', ti);
    std::string_view tl = topic.substr(ti, te == topic.npos ? topic.npos : te - ti);
    if (fl != "+" && fl != tl) return false;
    bool f_last = fe == filter.npos;
    bool t_last = te == topic.npos;
    if (f_last && t_last) return true;
    if (t_last) {
      // Topic ended; the filter may still match with a trailing "/#".
      return filter.substr(fe + 1) == "#";
    }
    if (f_last) return false;
    fi = fe + 1;
    ti = te + 1;
  }
}

}  // namespace orrery::mqtt
