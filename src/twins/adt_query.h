// The Azure Digital Twins query language (POST /query) over a GraphView.
//
//   SELECT [TOP(n)] * | COUNT() | item [, item…]
//     FROM DIGITALTWINS [alias] { JOIN alias RELATED alias.relationshipName [alias] }
//        | FROM DIGITALTWINS MATCH pattern
//        | FROM RELATIONSHIPS [alias]
//     [WHERE condition]
//   item    := path [AS name]        (a collection alias, or a property path: T, T.name,
//   R.$sourceId) pattern := node { edge node } node    := '(' alias ')' edge    := '-' '[' [alias]
//   [':' name { '|' name }] ['*' hops] ']' '->'   (left to right)
//            | '<-' '[' … ']' '-'                                       (right to left)
//            | '-' '[' … ']' '-'                                        (either way)
//   hops    := n | lo '..' hi | '..' hi   (n hops; more than lo, at most hi; 1 to hi)
//
// Conditions are the shared expression language (docs/query.md) with NIN for "not in",
// ADT's IS_OF_MODEL([alias,] 'dtmi' [, exact]) and the shared function library. Property
// names and aliases are case-sensitive, except that an alias written in another case still
// names its collection when no alias matches exactly; keywords ignore case. With a single
// collection (no JOIN, no MATCH) a path may omit the alias (`$dtId`, `name`).
//
// Rows, as ADT returns them: `SELECT *` over one collection gives the twins (relationships)
// themselves; with JOIN or MATCH, and for projections, each row is an object keyed by alias
// or projection name (the alias, or the last member name of the path); undefined values are
// left out. `SELECT COUNT()` gives [{"COUNT": n}].
//
// Order and paging. Rows come in a deterministic order: by the starting collection's $dtId
// (relationships: by source, then id), then by relationship id along each JOIN or edge.
// Execute returns at most max_items rows and, when more follow, an opaque continuation that
// resumes at the next row (the position is the starting document's key and the rows already
// returned from it, so a resumed page is correct while that part of the graph is unchanged).
// Multi-hop edges return each twin reachable within the range once per starting binding.
//
// Plans. The starting collection is looked up rather than scanned when WHERE has a top-level
// conjunct `alias.$dtId = 'id'` or `alias.$dtId IN [...]` (Twin); else Execute takes the
// cheapest, by the view's counts, of the model index (IS_OF_MODEL on it) and the property
// index (`alias.p = lit`, IN, <, <=, >, >=, BETWEEN, STARTSWITH on a top-level property); in a
// JOIN or MATCH the first collection with a $dtId conjunct starts the walk, else the
// collection with an indexable conjunct whose start the view counts fewest twins for (the
// choice is made on the first page and kept by its continuation). Every conjunct —
// those the indexes served too — is evaluated as soon as the collections it reads are bound,
// so the answer is the scan's.
//
// Limits (AdtQueryLimits; ADT's documented service limits) are refused with
// query::Errc::kLimitExceeded; malformed text with kSyntax, unknown functions with
// kUnknownFunction, meaningless queries with kInvalidQuery; every message says where.
//
// An AdtQuery is immutable and cheap to copy; Execute may run on any number of threads at
// once over views that allow it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "base/error.h"
#include "twins/graph_view.h"

namespace orrery::twins {

struct AdtQueryLimits {
  size_t max_chars = 8000;         // "number of characters in a query"
  uint32_t max_joins = 5;          // "up to five JOINs"
  uint32_t max_in_items = 50;      // "array items in an IN / NOT IN clause"
  uint32_t max_and_or = 50;        // "AND / OR expressions in a query"
  uint32_t max_hops = 10;          // MATCH: "the maximum number of hops is 10"
  uint32_t max_match_edges = 10;   // relationship conditions chained in one MATCH (Orrery's)
  uint64_t max_top = 10000;        // TOP(n)
  uint32_t max_projections = 100;  // SELECT items (Orrery's)
};

struct AdtPageRequest {
  uint64_t max_items = 1000;  // ADT's page size; 0 means the default
  std::string continuation;   // empty: the first page
};

struct AdtPage {
  std::vector<boost::json::value> rows;
  std::string continuation;  // empty: no more rows
  // Documents (twins and relationships) examined for this page: the "query-charge" figure.
  uint64_t examined = 0;
  double query_charge() const { return static_cast<double>(examined); }
};

namespace internal {
struct AdtPlan;
}

class AdtQuery {
 public:
  // Parses and binds `text`. Errors: query::Errc (see above).
  static Result<AdtQuery> Parse(std::string_view text, const AdtQueryLimits& limits = {});

  // One page of rows. Errors: query::Errc::kInvalidQuery for a continuation that is
  // malformed or belongs to another query. REQUIRES: `view` outlives the call; the view's
  // callbacks are never re-entered (documents are collected, then followed).
  Result<AdtPage> Execute(const GraphView& view, const AdtPageRequest& request = {}) const;

  bool select_all() const;
  bool count() const;

 private:
  explicit AdtQuery(std::shared_ptr<const internal::AdtPlan> plan) : plan_(std::move(plan)) {}
  std::shared_ptr<const internal::AdtPlan> plan_;
};

}  // namespace orrery::twins
