// Evaluates bound routing conditions against messages, and the system property names.
//
// Design note. A condition's property slots become JSON strings for the foundation's
// evaluator. They are built per evaluation in a stack buffer (a monotonic resource over it):
// short values fit in the string itself, longer ones in the buffer, so a typical condition
// allocates nothing; the body and the twin are borrowed as they are. Evaluate() copies its
// result out of that buffer before it goes away.
#include <new>
#include <optional>
#include <span>

#include <boost/json/monotonic_resource.hpp>

#include "base/strings.h"
#include "query/evaluator.h"
#include "query/query_error.h"
#include "query/routing/plan.h"

namespace orrery::query {

namespace {

struct SystemPropertyNameEntry {
  std::string_view name;
  SystemProperty property;
};

// The routing name of each property first (SystemPropertyName), then the other accepted names:
// the wire names of the D2C message format and edgeHub's spelling of the creation time.
constexpr SystemPropertyNameEntry kSystemPropertyNames[] = {
    {"contentType", SystemProperty::kContentType},
    {"contentEncoding", SystemProperty::kContentEncoding},
    {"messageId", SystemProperty::kMessageId},
    {"correlationId", SystemProperty::kCorrelationId},
    {"userId", SystemProperty::kUserId},
    {"to", SystemProperty::kTo},
    {"connectionDeviceId", SystemProperty::kConnectionDeviceId},
    {"connectionModuleId", SystemProperty::kConnectionModuleId},
    {"connectionDeviceGenerationId", SystemProperty::kConnectionDeviceGenerationId},
    {"connectionAuthMethod", SystemProperty::kConnectionAuthMethod},
    {"enqueuedTime", SystemProperty::kEnqueuedTime},
    {"creation-time-utc", SystemProperty::kCreationTimeUtc},
    {"dt-dataschema", SystemProperty::kDtDataSchema},
    {"dt-subject", SystemProperty::kDtSubject},
    {"iothub-interface-name", SystemProperty::kInterfaceName},
    // Wire names.
    {"content-type", SystemProperty::kContentType},
    {"content-encoding", SystemProperty::kContentEncoding},
    {"message-id", SystemProperty::kMessageId},
    {"correlation-id", SystemProperty::kCorrelationId},
    {"user-id", SystemProperty::kUserId},
    {"iothub-connection-device-id", SystemProperty::kConnectionDeviceId},
    {"iothub-connection-module-id", SystemProperty::kConnectionModuleId},
    {"iothub-connection-auth-generation-id", SystemProperty::kConnectionDeviceGenerationId},
    {"iothub-connection-auth-method", SystemProperty::kConnectionAuthMethod},
    {"iothub-enqueuedtime", SystemProperty::kEnqueuedTime},
    {"iothub-creation-time-utc", SystemProperty::kCreationTimeUtc},
    {"creationTimeUtc", SystemProperty::kCreationTimeUtc},
};
static_assert(static_cast<size_t>(SystemProperty::kInterfaceName) + 1 == kSystemPropertyCount);
static_assert(kSystemPropertyCount <= 32, "SystemProperties keeps a 32-bit presence mask");

}  // namespace

std::string_view SystemPropertyName(SystemProperty p) {
  for (const auto& entry : kSystemPropertyNames) {
    if (entry.property == p) return entry.name;
  }
  return "?";
}

std::optional<SystemProperty> FindSystemProperty(std::string_view name) {
  for (const auto& entry : kSystemPropertyNames) {
    if (strings::IEquals(entry.name, name)) return entry.property;
  }
  return std::nullopt;
}

bool SystemProperties::SetByName(std::string_view name, std::string_view value) noexcept {
  auto p = FindSystemProperty(name);
  if (!p) return false;
  Set(*p, value);
  return true;
}

namespace {

// strings::IEquals without its per-character std::tolower calls: this runs for every
// application property of every message and condition.
bool AsciiIEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a == b) return true;  // the usual case, and a memcmp
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    unsigned char lower = x | 0x20;
    if (lower != (y | 0x20) || lower < 'a' || lower > 'z') return false;
  }
  return true;
}

std::optional<std::string_view> Lookup(const internal::RouteSlot& slot, const RouteInput& in) {
  if (slot.system) {
    if (auto v = in.system.Get(*slot.system)) return v;
  }
  const auto& props = in.app_properties;
  for (auto it = props.rbegin(); it != props.rend(); ++it) {
    if (AsciiIEquals(it->first, slot.app)) return std::string_view(it->second);
  }
  return std::nullopt;
}

// Uninitialised room for `n` objects of T, inline up to N, else on the heap; the owner
// constructs and destroys them. (Zero-filling arrays of roots and values cost more than
// evaluating a simple condition.)
template <class T, size_t N>
class Room {
 public:
  explicit Room(size_t n)
      : data_(n <= N
                  ? reinterpret_cast<T*>(inline_)
                  : static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))))) {}
  Room(const Room&) = delete;
  Room& operator=(const Room&) = delete;
  ~Room() {
    if (data_ != reinterpret_cast<T*>(inline_)) {
      ::operator delete(data_, std::align_val_t(alignof(T)));
    }
  }
  T* data() const { return data_; }

 private:
  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* data_;
};

// The roots of one evaluation of `plan`: the body, the twin and a JSON string per property
// slot, valid while this object lives.
class EvalRoots {
 public:
  EvalRoots(const internal::RoutePlan& plan, const RouteInput& in)
      : n_(internal::kFirstSlotRoot + plan.slots.size()), roots_(n_), values_(plan.slots.size()) {
    Root* roots = roots_.data();
    for (size_t i = 0; i < n_; ++i)
      new (&roots[i]) Root();
    if (in.body != nullptr) {
      roots[internal::kBodyRoot] =
          in.body->is_object() ? Root(in.body->get_object()) : Root(*in.body);
    }
    if (in.twin != nullptr) roots[internal::kTwinRoot] = Root(*in.twin);
    for (size_t i = 0; i < plan.slots.size(); ++i) {
      auto v = Lookup(plan.slots[i], in);
      if (!v) continue;
      // Short strings live inside the json::value; longer ones go to the scratch buffer.
      constexpr size_t kShort = 13;
      json::storage_ptr storage;
      if (v->size() > kShort) {
        if (!scratch_) scratch_.emplace(buffer_, sizeof buffer_);
        storage = json::storage_ptr(&*scratch_);
      }
      json::value* s = new (&values_.data()[built_]) json::value(json::string_view(*v), storage);
      ++built_;
      roots[internal::kFirstSlotRoot + i] = Root(*s);
    }
  }
  EvalRoots(const EvalRoots&) = delete;
  EvalRoots& operator=(const EvalRoots&) = delete;
  ~EvalRoots() {
    for (size_t i = 0; i < built_; ++i)
      values_.data()[i].~value();
  }

  std::span<const Root> roots() const { return {roots_.data(), n_}; }

 private:
  static constexpr size_t kInlineSlots = 8;

  alignas(std::max_align_t) unsigned char buffer_[512];
  std::optional<json::monotonic_resource> scratch_;
  size_t n_;
  Room<Root, internal::kFirstSlotRoot + kInlineSlots> roots_;
  Room<json::value, kInlineSlots> values_;  // the first built_ are constructed
  size_t built_ = 0;
};

}  // namespace

bool RouteCondition::Matches(const RouteInput& in) const {
  EvalRoots roots(*plan_, in);
  return IsTrue(query::Evaluate(plan_->condition, roots.roots()));
}

Value RouteCondition::Evaluate(const RouteInput& in) const {
  EvalRoots roots(*plan_, in);
  Value v = query::Evaluate(plan_->condition, roots.roots());
  // A deep copy in the default storage: `v` may borrow from the input, this condition or the
  // slots' scratch buffer.
  return v.defined() ? Value(json::value(v.get(), json::storage_ptr())) : Value();
}

bool RouteCondition::uses_body() const {
  return plan_->uses_body;
}
bool RouteCondition::uses_twin() const {
  return plan_->uses_twin;
}
const std::string& RouteCondition::text() const {
  return plan_->text;
}

Result<RouteCondition> ParseRouteCondition(std::string_view text) {
  const ExprOptions& options = RouteExprOptions();
  if (text.size() <= options.limits.max_length && strings::Trim(text).empty()) {
    // IoT Hub: "If no condition is provided, it evaluates to true by default."
    auto plan = std::make_shared<internal::RoutePlan>();
    plan->text = std::string(text);
    plan->condition.op = BoundOp::kConst;
    plan->condition.constant = true;
    return RouteCondition(std::move(plan));
  }
  ORRERY_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(text, options));
  return Catching([&] {
    auto plan = std::make_shared<internal::RoutePlan>(internal::BindRouteCondition(*e));
    plan->text = std::string(text);
    return RouteCondition(std::move(plan));
  });
}

}  // namespace orrery::query
