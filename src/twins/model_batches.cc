#include "twins/model_batches.h"

#include <map>
#include <set>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace orrery::twins {
namespace json = boost::json;

namespace {

// Every "@id" inside `v` (its own and its elements').
void CollectIds(const json::value& v, std::vector<std::string>& out) {
  if (auto* o = v.if_object()) {
    for (auto& [k, x] : *o) {
      if (k == "@id" && x.is_string()) out.emplace_back(x.get_string());
      CollectIds(x, out);
    }
  } else if (auto* a = v.if_array()) {
    for (auto& x : *a)
      CollectIds(x, out);
  }
}

// Every string value inside `v` except relationship targets (which may form cycles and
// need not exist) and "@id"s.
void CollectStrings(const json::value& v, std::vector<std::string_view>& out) {
  if (auto* o = v.if_object()) {
    for (auto& [k, x] : *o) {
      if (k == "target" || k == "@id") continue;
      CollectStrings(x, out);
    }
  } else if (auto* a = v.if_array()) {
    for (auto& x : *a)
      CollectStrings(x, out);
  } else if (auto* s = v.if_string()) {
    out.emplace_back(*s);
  }
}

}  // namespace

std::vector<std::vector<json::value>> ModelBatches(std::vector<json::value> models,
                                                   size_t max_batch) {
  // Which model defines each id (the model's own and its elements').
  std::map<std::string, size_t, std::less<>> owner;
  for (size_t i = 0; i < models.size(); ++i) {
    std::vector<std::string> ids;
    CollectIds(models[i], ids);
    for (auto& id : ids)
      owner.emplace(id, i);
  }
  std::vector<std::set<size_t>> deps(models.size());
  std::vector<std::vector<size_t>> dependents(models.size());
  for (size_t i = 0; i < models.size(); ++i) {
    std::vector<std::string_view> refs;
    CollectStrings(models[i], refs);
    for (auto r : refs) {
      auto it = owner.find(r);
      if (it != owner.end() && it->second != i && deps[i].insert(it->second).second) {
        dependents[it->second].push_back(i);
      }
    }
  }
  // Kahn's algorithm, stable in input order; what a cycle leaves goes last (the server then
  // reports the cycle).
  std::vector<size_t> order, remaining(models.size());
  std::vector<size_t> ready;
  for (size_t i = 0; i < models.size(); ++i) {
    remaining[i] = deps[i].size();
    if (remaining[i] == 0) ready.push_back(i);
  }
  std::vector<bool> placed(models.size());
  for (size_t k = 0; k < ready.size(); ++k) {
    size_t i = ready[k];
    order.push_back(i);
    placed[i] = true;
    for (size_t d : dependents[i]) {
      if (--remaining[d] == 0) ready.push_back(d);
    }
  }
  for (size_t i = 0; i < models.size(); ++i) {
    if (!placed[i]) order.push_back(i);
  }
  std::vector<std::vector<json::value>> batches;
  for (size_t k = 0; k < order.size(); ++k) {
    if (k % max_batch == 0) batches.emplace_back();
    batches.back().push_back(std::move(models[order[k]]));
  }
  return batches;
}

}  // namespace orrery::twins
