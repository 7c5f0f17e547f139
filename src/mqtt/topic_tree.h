// The subscription trie.
//
// Design note. Filters are stored level by level: a node per level with children keyed by
// the level's text, where "+" and "#" are ordinary keys. Matching a topic walks the topic's
// levels and, at each node, follows three edges: the literal level, "+" (one level) and "#"
// (the rest, including the parent level itself, so "a/#" matches "a"). At the root, "+"
// and "#" are not followed for topics beginning with '$' (MQTT §4.7.2). Each node keeps its
// plain subscribers and its shared-subscription groups; a group delivers each message to one
// member, round-robin, preferring members that are online. Empty nodes are pruned on
// removal, so memory follows the live subscriptions.
//
// Thread safety: a shared mutex inside; Match runs concurrently with other Matches.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mqtt/packets.h"

namespace orrery::mqtt {

class Session;

struct Target {
  std::shared_ptr<Session> session;
  SubscriptionOptions options;
  uint32_t subscription_id = 0;  // 0 = none
  bool shared = false;
};

class TopicTree {
 public:
  TopicTree();
  ~TopicTree();

  // Adds or replaces the subscription of `session` to `filter` (a full filter, possibly
  // "$share/group/..."). Returns true if it was new.
  bool Add(std::string_view filter, const std::shared_ptr<Session>& session,
           SubscriptionOptions options, uint32_t subscription_id);
  // Returns true if a subscription was removed.
  bool Remove(std::string_view filter, const Session* session);
  // Appends every subscription matching `topic` (one member per shared group).
  void Match(std::string_view topic, std::vector<Target>& out) const;
  size_t size() const { return count_.load(std::memory_order_relaxed); }

  struct Node;  // defined in topic_tree.cc

 private:
  mutable std::shared_mutex mu_;
  std::unique_ptr<Node> root_;
  std::atomic<size_t> count_{0};
};

}  // namespace orrery::mqtt
