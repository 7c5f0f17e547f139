#include "mqtt/topic_tree.h"

#include "mqtt/session.h"
#include "mqtt/topic.h"

namespace orrery::mqtt {

struct Entry {
  std::shared_ptr<Session> session;
  SubscriptionOptions options;
  uint32_t subscription_id = 0;
};

struct Group {
  std::vector<Entry> members;
  mutable std::atomic<size_t> next{0};
};

struct TopicTree::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>> children;
  std::vector<Entry> subscribers;
  std::map<std::string, Group, std::less<>> groups;
  bool empty() const { return children.empty() && subscribers.empty() && groups.empty(); }
};

namespace {

std::vector<std::string_view> Levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

}  // namespace

TopicTree::TopicTree() : root_(std::make_unique<Node>()) {}
TopicTree::~TopicTree() = default;

bool TopicTree::Add(std::string_view filter, const std::shared_ptr<Session>& session,
                    SubscriptionOptions options, uint32_t subscription_id) {
  auto shared = SplitShared(filter);
  std::unique_lock lock(mu_);
  Node* n = root_.get();
  for (auto level : Levels(shared.filter)) {
    auto& child = n->children[std::string(level)];
    if (!child) child = std::make_unique<Node>();
    n = child.get();
  }
  std::vector<Entry>* list = &n->subscribers;
  if (!shared.group.empty()) {
    auto it = n->groups.find(shared.group);
    if (it == n->groups.end()) {
      it = n->groups.try_emplace(std::string(shared.group)).first;
    }
    list = &it->second.members;
  }
  for (auto& e : *list) {
    if (e.session == session) {
      e.options = options;
      e.subscription_id = subscription_id;
      return false;
    }
  }
  list->push_back({session, options, subscription_id});
  count_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool TopicTree::Remove(std::string_view filter, const Session* session) {
  auto shared = SplitShared(filter);
  std::unique_lock lock(mu_);
  std::vector<std::pair<Node*, std::string>> path;
  Node* n = root_.get();
  for (auto level : Levels(shared.filter)) {
    auto it = n->children.find(std::string(level));
    if (it == n->children.end()) return false;
    path.emplace_back(n, std::string(level));
    n = it->second.get();
  }
  bool removed = false;
  auto erase_from = [&](std::vector<Entry>& list) {
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->session.get() == session) {
        list.erase(it);
        removed = true;
        return;
      }
    }
  };
  if (shared.group.empty()) {
    erase_from(n->subscribers);
  } else if (auto g = n->groups.find(shared.group); g != n->groups.end()) {
    erase_from(g->second.members);
    if (g->second.members.empty()) n->groups.erase(g);
  }
  if (!removed) return false;
  count_.fetch_sub(1, std::memory_order_relaxed);
  // Prune empty nodes bottom-up.
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto child = it->first->children.find(it->second);
    if (!child->second->empty()) break;
    it->first->children.erase(child);
  }
  return true;
}

namespace {

void AddSubscribers(const TopicTree::Node& n, std::vector<Target>& out) {
  for (auto& e : n.subscribers)
    out.push_back({e.session, e.options, e.subscription_id, false});
  for (auto& [name, g] : n.groups) {
    size_t size = g.members.size();
    if (size == 0) continue;
    size_t start = g.next.fetch_add(1, std::memory_order_relaxed);
    const Entry* pick = &g.members[start % size];
    for (size_t i = 0; i < size; ++i) {
      const Entry& e = g.members[(start + i) % size];
      if (e.session->online.load(std::memory_order_relaxed)) {
        pick = &e;
        break;
      }
    }
    out.push_back({pick->session, pick->options, pick->subscription_id, true});
  }
}

void MatchLevels(const TopicTree::Node& n, const std::vector<std::string_view>& levels, size_t i,
                 bool dollar, std::vector<Target>& out) {
  bool root_wild_ok = !(i == 0 && dollar);
  if (root_wild_ok) {
    if (auto h = n.children.find("#"); h != n.children.end()) AddSubscribers(*h->second, out);
  }
  if (i == levels.size()) {
    AddSubscribers(n, out);
    return;
  }
  if (root_wild_ok) {
    if (auto p = n.children.find("+"); p != n.children.end()) {
      MatchLevels(*p->second, levels, i + 1, dollar, out);
    }
  }
  if (auto c = n.children.find(std::string(levels[i])); c != n.children.end()) {
    MatchLevels(*c->second, levels, i + 1, dollar, out);
  }
}

}  // namespace

void TopicTree::Match(std::string_view topic, std::vector<Target>& out) const {
  auto levels = Levels(topic);
  bool dollar = !topic.empty() && topic[0] == '$';
  std::shared_lock lock(mu_);
  MatchLevels(*root_, levels, 0, dollar, out);
}

}  // namespace orrery::mqtt
