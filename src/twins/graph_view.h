// What the ADT query engine reads of the twin graph: twins and relationships in Azure
// Digital Twins' JSON shapes (see twin_graph.h), the adjacency both ways, model inheritance
// for IS_OF_MODEL, and (optionally) a property index. TwinGraph implements it over its maps;
// tests implement it over plain maps.
//
// Thread safety: an implementation answers under its own lock or over a snapshot; callbacks
// must not call back into the view. Visiting stops when a callback returns false. The
// documents a view hands out (to a visit, or from Twin) stay valid and unchanged for as long
// as the query runs (Execute holds the view for its whole duration).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace orrery::twins {

class GraphView {
 public:
  virtual ~GraphView() = default;
  using Visit = std::function<bool(const boost::json::object&)>;

  // Every twin, in $dtId order.
  virtual void ForEachTwin(const Visit& visit) const = 0;
  // The twins whose $metadata.$model is `model_id` or (unless `exact`) extends it, in $dtId
  // order: the model index.
  virtual void ForEachTwinOfModel(std::string_view model_id, bool exact,
                                  const Visit& visit) const = 0;
  // One twin, or nullptr. The pointer is valid during the current ForEach… call or query.
  virtual const boost::json::object* Twin(std::string_view id) const = 0;
  // Every relationship, in (source, id) order.
  virtual void ForEachRelationship(const Visit& visit) const = 0;
  // Relationships from `source` (named `name` when not empty), in relationship id order.
  virtual void ForEachOutgoing(std::string_view source, std::string_view name,
                               const Visit& visit) const = 0;
  // Relationships to `target` (named `name` when not empty), in (source, id) order.
  virtual void ForEachIncoming(std::string_view target, std::string_view name,
                               const Visit& visit) const = 0;
  // Whether a twin of model `twin_model` is of `model_id`: equal, or (unless `exact`) an
  // Interface it extends, directly or not.
  virtual bool IsOfModel(std::string_view twin_model, std::string_view model_id,
                         bool exact) const = 0;

  // --- Optional indexes: a view without them answers nullopt / false and is scanned. ---

  // How many twins ForEachTwinOfModel(model_id, exact) visits.
  virtual std::optional<size_t> CountTwinsOfModel(std::string_view /*model_id*/,
                                                  bool /*exact*/) const {
    return std::nullopt;
  }
  // A condition on a top-level property of twins that the property index can serve: equal to
  // one of `values` (strings, numbers, booleans, null) or, when `values` is empty, within
  // [lo, hi] (either bound may be absent; those given are both numbers or both strings).
  // Numbers compare as numbers whatever their JSON representation.
  struct PropertyFilter {
    std::string name;
    std::vector<boost::json::value> values;
    std::optional<boost::json::value> lo, hi;
  };
  // Visits, in $dtId order, every twin whose property `filter.name` satisfies the filter — and
  // possibly others (the caller still evaluates its condition). Returns false, visiting
  // nothing, when the view has no property index.
  virtual bool ForEachTwinByProperty(const PropertyFilter& /*filter*/,
                                     const Visit& /*visit*/) const {
    return false;
  }
  // How many twins ForEachTwinByProperty(filter) would visit, counted up to `cap` (the answer
  // is at most `cap`); nullopt without a property index.
  virtual std::optional<size_t> CountTwinsByProperty(const PropertyFilter& /*filter*/,
                                                     size_t /*cap*/) const {
    return std::nullopt;
  }
};

// A GraphView that passes everything to another one: derive to hide or change a part of it
// (tests and benchmarks compare a view with and without its indexes).
class ForwardingGraphView : public GraphView {
 public:
  explicit ForwardingGraphView(const GraphView& v) : v_(v) {}
  void ForEachTwin(const Visit& visit) const override { v_.ForEachTwin(visit); }
  void ForEachTwinOfModel(std::string_view model, bool exact, const Visit& visit) const override {
    v_.ForEachTwinOfModel(model, exact, visit);
  }
  const boost::json::object* Twin(std::string_view id) const override { return v_.Twin(id); }
  void ForEachRelationship(const Visit& visit) const override { v_.ForEachRelationship(visit); }
  void ForEachOutgoing(std::string_view source, std::string_view name,
                       const Visit& visit) const override {
    v_.ForEachOutgoing(source, name, visit);
  }
  void ForEachIncoming(std::string_view target, std::string_view name,
                       const Visit& visit) const override {
    v_.ForEachIncoming(target, name, visit);
  }
  bool IsOfModel(std::string_view twin_model, std::string_view model_id,
                 bool exact) const override {
    return v_.IsOfModel(twin_model, model_id, exact);
  }
  std::optional<size_t> CountTwinsOfModel(std::string_view model_id, bool exact) const override {
    return v_.CountTwinsOfModel(model_id, exact);
  }
  bool ForEachTwinByProperty(const PropertyFilter& filter, const Visit& visit) const override {
    return v_.ForEachTwinByProperty(filter, visit);
  }
  std::optional<size_t> CountTwinsByProperty(const PropertyFilter& filter,
                                             size_t cap) const override {
    return v_.CountTwinsByProperty(filter, cap);
  }

 protected:
  const GraphView& v_;
};

}  // namespace orrery::twins
