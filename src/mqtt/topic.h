// Validation of MQTT strings, topic names and topic filters, exactly per the specifications
// (MQTT 3.1.1 §1.5.3, §4.7; MQTT 5 §1.5.4, §4.7, §4.8.2).
#pragma once

#include <string_view>

namespace orrery::mqtt {

// Well-formed UTF-8 without U+0000 and without surrogates (U+D800..U+DFFF); overlong forms
// and code points above U+10FFFF are rejected.
bool IsValidUtf8(std::string_view s);

// A topic name for PUBLISH: non-empty, valid UTF-8, no '+' or '#'.
bool IsValidTopicName(std::string_view topic);

// A topic filter for SUBSCRIBE/UNSUBSCRIBE: non-empty, valid UTF-8; '+' occupies a whole
// level; '#' occupies a whole level and is last. Shared subscriptions
// ("$share/{group}/{filter}") are validated with the group non-empty and free of '/', '+',
// '#', and the filter itself valid.
bool IsValidTopicFilter(std::string_view filter);

// "$share/g/a/b" → {"g", "a/b"}; nullopt-like empty group for plain filters.
struct SharedFilter {
  std::string_view group;   // empty if not shared
  std::string_view filter;  // the filter to match topics with
};
SharedFilter SplitShared(std::string_view filter);

// Whether `filter` (not shared) matches `topic`, with the rule that a topic starting with
// '$' is not matched by a filter starting with '+' or '#'.
bool TopicMatches(std::string_view filter, std::string_view topic);

}  // namespace orrery::mqtt
