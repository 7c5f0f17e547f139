// libFuzzer target for the Azure Digital Twins query language: the input is parsed and bound
// as an ADT query; whatever binds runs, page by page, over a small fixed graph (a building,
// a floor, two rooms, their relationships). Nothing may crash, hang, overflow the stack or
// escape as an exception, and paging must end.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "twins/adt_query.h"

namespace {
namespace json = boost::json;
using orrery::twins::GraphView;

class FixedGraph final : public GraphView {
 public:
  FixedGraph() {
    auto twin = [&](std::string id, std::string model, json::object props) {
      props["$dtId"] = id;
      props["$metadata"] = json::object{{"$model", model}};
      twins_.emplace(id, std::move(props));
    };
    twin("b1", "dtmi:ex:Building;1", {{"name", "HQ"}, {"floors", 2}});
    twin("f1", "dtmi:ex:Floor;1", {{"level", 1}, {"tags", json::array{"a", "b"}}});
    twin("r1", "dtmi:ex:Room;1", {{"temperature", 21.5}, {"occupied", true}});
    twin("r2", "dtmi:ex:Room;1", {{"temperature", nullptr}, {"name", "Lab"}});
    auto rel = [&](std::string src, std::string id, std::string name, std::string dst) {
      rels_.push_back(json::object{{"$relationshipId", id},
                                   {"$sourceId", src},
                                   {"$relationshipName", name},
                                   {"$targetId", dst},
                                   {"since", 2020}});
    };
    rel("b1", "c1", "contains", "f1");
    rel("f1", "c2", "contains", "r1");
    rel("f1", "c3", "contains", "r2");
    rel("r1", "n1", "next", "r2");
    rel("r2", "n2", "next", "r1");  // a cycle
  }
  void ForEachTwin(const Visit& visit) const override {
    for (auto& [id, t] : twins_) {
      if (!visit(t)) return;
    }
  }
  void ForEachTwinOfModel(std::string_view model, bool exact, const Visit& visit) const override {
    for (auto& [id, t] : twins_) {
      if (IsOfModel(t.at("$metadata").at("$model").as_string(), model, exact) && !visit(t)) return;
    }
  }
  const json::object* Twin(std::string_view id) const override {
    auto it = twins_.find(std::string(id));
    return it == twins_.end() ? nullptr : &it->second;
  }
  void ForEachRelationship(const Visit& visit) const override {
    for (auto& r : rels_) {
      if (!visit(r)) return;
    }
  }
  void ForEachOutgoing(std::string_view source, std::string_view name,
                       const Visit& visit) const override {
    for (auto& r : rels_) {
      if (r.at("$sourceId").as_string() != source) continue;
      if (!name.empty() && r.at("$relationshipName").as_string() != name) continue;
      if (!visit(r)) return;
    }
  }
  void ForEachIncoming(std::string_view target, std::string_view name,
                       const Visit& visit) const override {
    for (auto& r : rels_) {
      if (r.at("$targetId").as_string() != target) continue;
      if (!name.empty() && r.at("$relationshipName").as_string() != name) continue;
      if (!visit(r)) return;
    }
  }
  bool IsOfModel(std::string_view twin_model, std::string_view model, bool exact) const override {
    if (twin_model == model) return true;
    return !exact && model == "dtmi:ex:Space;1" && twin_model != "dtmi:ex:Building;1";
  }

 private:
  std::map<std::string, json::object> twins_;
  std::vector<json::object> rels_;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto q = orrery::twins::AdtQuery::Parse(text);
  if (!q) return 0;
  static const FixedGraph graph;
  orrery::twins::AdtPageRequest page{.max_items = 2};
  for (int pages = 0; pages < 64; ++pages) {  // 4 twins, 5 relationships: paging must end
    auto r = q->Execute(graph, page);
    if (!r || r->continuation.empty()) return 0;
    page.continuation = r->continuation;
  }
  __builtin_trap();  // paging did not end
}
