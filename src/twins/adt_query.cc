// The Azure Digital Twins query dialect: statement parser, binder and executor over the shared
// query foundation (grammar and semantics in adt_query.h and docs/twins.md).
//
// Design note. A bound query is a list of collections (each a root of the evaluator: twins
// or relationships) and a program of steps that bind them one after another: a start step
// (scan, $dtId lookups or the model index), then one step per JOIN or MATCH edge, each
// following relationships from an already bound twin. WHERE is split into its top-level
// conjuncts; each is evaluated right after the step that binds the last collection it reads,
// so a binding that fails is pruned before the walk goes deeper. A GraphView's callbacks may
// not call back into it, so every step first collects what it visits (twin ids, relationship
// copies), then follows it. IS_OF_MODEL needs the view at evaluation time: it reads it from a
// thread-local set for the duration of Execute.
#include "twins/adt_query.h"

#include <algorithm>
#include <set>

#include <boost/json.hpp>

#include "base/strings.h"
#include "query/binder.h"
#include "query/evaluator.h"
#include "query/functions.h"
#include "query/lexer.h"
#include "query/parser.h"
#include "query/query_error.h"

namespace orrery::twins {

namespace json = boost::json;
using query::BinaryOp;
using query::BoundExpr;
using query::BoundOp;
using query::Errc;
using query::Expr;
using query::ExprKind;
using query::ExprPtr;
using query::Position;
using query::QueryError;
using query::Token;
using query::TokenCursor;
using query::TokenKind;

namespace internal {

enum class Dir : uint8_t { kOut, kIn, kBoth };  // as followed from the bound twin

struct Step {
  enum Kind : uint8_t { kStartTwins, kStartRelationships, kFollow } kind = kStartTwins;
  uint32_t root = 0;  // start: the collection bound; follow: the twin reached
  // Start hints.
  std::vector<std::string> ids;  // sorted, unique: $dtId (twins) or $sourceId (relationships)
  bool has_ids = false;
  std::string model;
  bool has_model = false;
  bool exact = false;
  // Conditions on properties the view's property index may serve; Execute takes the cheapest
  // of these and the model index (by the view's counts).
  std::vector<GraphView::PropertyFilter> filters;
  // Follow.
  uint32_t from = 0;  // the bound twin
  int rel_root = -1;  // the relationship's collection, when named
  Dir dir = Dir::kOut;
  std::vector<std::string> names;  // empty: any relationship
  uint32_t min_hops = 1, max_hops = 1;
  bool multi_hop = false;
  std::vector<uint32_t> conjuncts;  // evaluated once this step has bound its collections
};

struct Item {
  BoundExpr expr;
  std::string name;
};

struct AdtPlan {
  std::string text;
  uint64_t text_hash = 0;
  bool star = false;
  bool count = false;
  std::optional<uint64_t> top;
  bool single = true;  // one collection, no JOIN or MATCH: SELECT * gives the documents
  std::vector<std::string> aliases;  // per root; empty for an unnamed FROM collection
  std::vector<bool> is_relationship;
  std::vector<Item> items;
  std::vector<BoundExpr> conjuncts;
  std::vector<uint32_t> constant_conjuncts;  // read no collection
  // The programs: one per collection the walk may start at (JOIN, MATCH), each a start step
  // and the steps that follow from it. Execute picks the one whose start visits the fewest
  // twins by the view's counts; a continuation names it.
  std::vector<std::vector<Step>> programs;
};

}  // namespace internal

namespace {

using internal::AdtPlan;
using internal::Dir;
using internal::Step;

thread_local const GraphView* t_view = nullptr;

// IS_OF_MODEL(model of the twin, 'dtmi', exact): the binder rewrites ADT's forms into this.
query::Value IsOfModelImpl(std::span<query::Value> args) {
  if (t_view == nullptr || !args[0].defined() || !args[0]->is_string() || !args[1].defined() ||
      !args[1]->is_string()) {
    return query::Value::Bool(false);
  }
  bool exact = args[2].defined() && args[2]->is_bool() && args[2]->get_bool();
  return query::Value::Bool(t_view->IsOfModel(args[0]->get_string(), args[1]->get_string(), exact));
}

const query::FunctionRegistry& AdtFunctions() {
  static const query::FunctionRegistry registry = [] {
    query::FunctionRegistry r = query::FunctionRegistry::Builtins();
    r.Add("IS_OF_MODEL", 3, 3, &IsOfModelImpl);
    return r;
  }();
  return registry;
}

// The dialect checks ADT's own limits; the shared ones (depth, nodes) stay the defaults.
const query::ExprOptions& AdtExprOptions() {
  static const query::ExprOptions options = [] {
    query::ExprOptions o;
    o.reserved = {"SELECT",  "TOP",   "FROM", "WHERE",        "JOIN",
                  "RELATED", "MATCH", "AS",   "DIGITALTWINS", "RELATIONSHIPS"};
    o.nin_operator = true;
    return o;
  }();
  return options;
}

query::LexOptions AdtLexOptions() {
  query::LexOptions o;
  o.quoted_names_anywhere = true;  // WHERE [[Group]] = 'BravoTeam'
  o.bitwise_operators = true;      // '|' between relationship names in MATCH
  o.range_dots = true;             // MATCH hop ranges: [*1..3]
  return o;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

// The documented examples carry no-break spaces (U+00A0, U+202F) where they were typeset;
// outside string literals every Unicode space separator becomes an ASCII space, one for one,
// so that columns in messages stay right.
std::string NormaliseSpaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (quote != 0) {
      out += text[i];
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (text[i] == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '\'' || c == '"') quote = text[i];
    size_t len = 0;
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xA0) {
      len = 2;  // U+00A0
    } else if (c == 0xE2 && i + 2 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) == 0x80) {
      unsigned char d = static_cast<unsigned char>(text[i + 2]);
      if ((d >= 0x80 && d <= 0x8A) || d == 0xAF) len = 3;  // U+2000–U+200A, U+202F
    } else if (c == 0xE3 && i + 2 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) == 0x80 &&
               static_cast<unsigned char>(text[i + 2]) == 0x80) {
      len = 3;  // U+3000
    }
    if (len > 0) {
      out += ' ';
      i += len - 1;
    } else {
      out += text[i];
    }
  }
  return out;
}

// ---- Parsing -------------------------------------------------------------------------------

struct JoinClause {
  std::string target, source, relationship, rel_alias;
  Position pos, source_pos;
};

struct MatchNode {
  std::string alias;
  Position pos;
};

struct MatchEdge {
  std::string variable;
  std::vector<std::string> names;
  Dir dir = Dir::kOut;  // left to right: kOut is '->', kIn is '<-'
  uint32_t min_hops = 1, max_hops = 1;
  bool multi_hop = false;
  Position pos;
};

struct SelectItem {
  ExprPtr expr;
  std::string alias;
  Position pos;
};

struct Statement {
  std::optional<uint64_t> top;
  bool star = false;
  bool count = false;
  std::vector<SelectItem> items;
  bool relationships = false;
  std::string from_alias;
  Position from_pos;
  std::vector<JoinClause> joins;
  std::vector<MatchNode> nodes;
  std::vector<MatchEdge> edges;
  bool match = false;
  ExprPtr where;
};

class StatementParser {
 public:
  StatementParser(TokenCursor& in, query::ExpressionParser& expr, const AdtQueryLimits& limits)
      : in_(in), expr_(expr), limits_(limits) {}

  Statement Parse() {
    Statement st;
    in_.ExpectKeyword("SELECT");
    if (in_.TryKeyword("TOP")) st.top = ParseTop();
    if (st.top && in_.AtKeyword("FROM")) {
      st.star = true;  // SELECT TOP(5) FROM DIGITALTWINS
    } else if (in_.Try(TokenKind::kStar)) {
      st.star = true;
    } else {
      ParseItems(st);
    }
    if (!in_.AtKeyword("FROM")) in_.Fail(st.star ? "FROM" : "',', AS or FROM");
    in_.Next();
    if (in_.TryKeyword("DIGITALTWINS")) {
      st.relationships = false;
    } else if (in_.TryKeyword("RELATIONSHIPS")) {
      st.relationships = true;
    } else {
      in_.Fail("DIGITALTWINS or RELATIONSHIPS");
    }
    st.from_pos = in_.Peek().pos;
    if (IsAlias(in_.Peek())) st.from_alias = std::string(in_.Next().text);
    while (in_.AtKeyword("JOIN")) {
      if (st.relationships) {
        throw QueryError(
            Errc::kInvalidQuery, in_.Peek().pos,
            "JOIN follows relationships of twins; it cannot follow FROM RELATIONSHIPS");
      }
      Position pos = in_.Next().pos;
      if (st.joins.size() >= limits_.max_joins) {
        throw QueryError(Errc::kLimitExceeded, pos,
                         "too many JOINs (the limit is " + std::to_string(limits_.max_joins) + ")");
      }
      JoinClause j;
      j.pos = pos;
      j.target = ExpectAlias("a collection name after JOIN");
      in_.ExpectKeyword("RELATED");
      j.source_pos = in_.Peek().pos;
      j.source = ExpectAlias("a collection name after RELATED");
      in_.Expect(TokenKind::kDot, "'.' and a relationship name");
      const Token& rel = in_.Peek();
      if (rel.kind != TokenKind::kIdentifier) in_.Fail("a relationship name");
      j.relationship = std::string(in_.Next().text);
      if (IsAlias(in_.Peek())) j.rel_alias = std::string(in_.Next().text);
      st.joins.push_back(std::move(j));
    }
    if (in_.AtKeyword("MATCH")) {
      if (st.relationships || !st.joins.empty()) {
        throw QueryError(Errc::kInvalidQuery, in_.Peek().pos,
                         "MATCH follows FROM DIGITALTWINS, without JOIN");
      }
      if (!st.from_alias.empty()) {
        throw QueryError(Errc::kInvalidQuery, st.from_pos,
                         "FROM DIGITALTWINS takes no collection name with MATCH; name the twins "
                         "in the pattern");
      }
      in_.Next();
      st.match = true;
      ParsePattern(st);
    }
    if (in_.TryKeyword("WHERE")) st.where = expr_.Parse();
    if (!in_.AtEnd()) {
      in_.Fail(st.where ? "an operator or end of input" : "JOIN, MATCH, WHERE or end of input");
    }
    return st;
  }

 private:
  bool IsAlias(const Token& t) const {
    return t.kind == TokenKind::kIdentifier && !expr_.IsReserved(t);
  }
  std::string ExpectAlias(std::string_view what) {
    if (!IsAlias(in_.Peek())) in_.Fail(what);
    return std::string(in_.Next().text);
  }

  uint64_t Integer(std::string_view what) {
    const Token& t = in_.Peek();
    if (t.kind != TokenKind::kNumber) in_.Fail(what);
    std::optional<int64_t> v = query::ToInt64(t.number);
    if (!v || *v < 0) {
      throw QueryError(
          Errc::kInvalidQuery, t.pos,
          std::string(what) + " must be a non-negative integer, not " + std::string(t.text));
    }
    in_.Next();
    return static_cast<uint64_t>(*v);
  }

  // After '.', the lexer reads digits as a member name (`tags.2nd`): `..3` ends in one.
  uint64_t HopCount(std::string_view what) {
    const Token& t = in_.Peek();
    if (t.kind == TokenKind::kIdentifier && !t.text.empty() && t.text.size() <= 9 &&
        std::all_of(t.text.begin(), t.text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      in_.Next();
      return std::stoull(std::string(t.text));
    }
    return Integer(what);
  }

  uint64_t ParseTop() {
    bool paren = in_.Try(TokenKind::kLParen);
    Position pos = in_.Peek().pos;
    uint64_t n = Integer("a row count after TOP");
    if (paren) in_.Expect(TokenKind::kRParen, "')'");
    if (n > limits_.max_top) {
      throw QueryError(
          Errc::kLimitExceeded, pos,
          "TOP(" + std::to_string(n) + ") is over the limit of " + std::to_string(limits_.max_top));
    }
    return n;
  }

  void ParseItems(Statement& st) {
    while (true) {
      SelectItem item;
      item.pos = in_.Peek().pos;
      item.expr = expr_.Parse();
      if (in_.TryKeyword("AS")) {
        const Token& alias = in_.Peek();
        if (IsAlias(alias)) {
          item.alias = std::string(alias.text);
        } else if (alias.kind == TokenKind::kString) {
          item.alias = alias.value;
        } else {
          in_.Fail("a name after AS");
        }
        in_.Next();
      }
      st.items.push_back(std::move(item));
      if (!in_.Try(TokenKind::kComma)) break;
      if (st.items.size() >= limits_.max_projections) {
        throw QueryError(
            Errc::kLimitExceeded, in_.Peek().pos,
            "too many SELECT items (the limit is " + std::to_string(limits_.max_projections) + ")");
      }
    }
    const Expr& first = *st.items[0].expr;
    for (const SelectItem& item : st.items) {
      const Expr& e = *item.expr;
      if (e.kind == ExprKind::kCall && strings::IEquals(e.name, "COUNT")) {
        if (st.items.size() != 1 || !e.children.empty()) {
          throw QueryError(Errc::kInvalidQuery, e.pos,
                           "COUNT() takes no argument and stands alone: SELECT COUNT() FROM …");
        }
      }
    }
    if (first.kind == ExprKind::kCall && strings::IEquals(first.name, "COUNT")) {
      if (!st.items[0].alias.empty()) {
        throw QueryError(Errc::kInvalidQuery, st.items[0].pos, "COUNT() takes no alias");
      }
      st.count = true;
      st.items.clear();
    }
  }

  void ParseNode(Statement& st) {
    in_.Expect(TokenKind::kLParen, "'(' and a twin collection name");
    MatchNode n;
    n.pos = in_.Peek().pos;
    n.alias = ExpectAlias("a twin collection name");
    in_.Expect(TokenKind::kRParen, "')'");
    st.nodes.push_back(std::move(n));
  }

  void ParseHops(MatchEdge& e) {
    e.multi_hop = true;
    Position pos = in_.Peek().pos;
    uint64_t lo = 0, hi = 0;
    if (in_.Try(TokenKind::kDot)) {
      in_.Expect(TokenKind::kDot, "'..'");
      lo = 1;
      hi = HopCount("the most hops");
    } else {
      uint64_t n = Integer("a number of hops");
      if (in_.Try(TokenKind::kDot)) {
        in_.Expect(TokenKind::kDot, "'..'");
        hi = HopCount("the most hops");
        lo = n + 1;  // ADT: the starting limit is exclusive, the ending one inclusive
      } else {
        lo = hi = n;
      }
    }
    if (hi > limits_.max_hops) {
      throw QueryError(Errc::kLimitExceeded, pos,
                       "a relationship condition may span at most " +
                           std::to_string(limits_.max_hops) + " hops, not " + std::to_string(hi));
    }
    if (lo == 0 || lo > hi) {
      throw QueryError(
          Errc::kInvalidQuery, pos,
          "the hop range must hold 1 to " + std::to_string(limits_.max_hops) + " hops");
    }
    e.min_hops = static_cast<uint32_t>(lo);
    e.max_hops = static_cast<uint32_t>(hi);
  }

  void ParseNames(MatchEdge& e) {
    do {
      if (in_.Peek().kind != TokenKind::kIdentifier) in_.Fail("a relationship name");
      e.names.emplace_back(in_.Next().text);
    } while (in_.Try(TokenKind::kPipe));
  }

  void ParsePattern(Statement& st) {
    ParseNode(st);
    while (in_.At(TokenKind::kMinus) || in_.At(TokenKind::kLt)) {
      MatchEdge e;
      e.pos = in_.Peek().pos;
      if (st.edges.size() >= limits_.max_match_edges) {
        throw QueryError(Errc::kLimitExceeded, e.pos,
                         "too many relationship conditions in MATCH (the limit is " +
                             std::to_string(limits_.max_match_edges) + ")");
      }
      bool left = in_.Try(TokenKind::kLt);
      in_.Expect(TokenKind::kMinus, "'-'");
      in_.Expect(TokenKind::kLBracket, "'[' and a relationship condition");
      if (in_.Peek().kind == TokenKind::kIdentifier) {
        if (in_.At(TokenKind::kPipe, 1)) {
          ParseNames(e);  // `[has|includes]`, the colon left out
        } else {
          e.variable = ExpectAlias("a relationship collection name");
        }
      }
      if (in_.Try(TokenKind::kColon)) ParseNames(e);
      if (in_.Try(TokenKind::kStar)) ParseHops(e);
      in_.Expect(TokenKind::kRBracket, "']'");
      in_.Expect(TokenKind::kMinus, "'-'");
      bool right = in_.Try(TokenKind::kGt);
      if (left && right) {
        throw QueryError(Errc::kSyntax, e.pos,
                         "a relationship condition has one direction: "
                         "'-[]->', '<-[]-' or '-[]-'");
      }
      e.dir = right ? Dir::kOut : left ? Dir::kIn : Dir::kBoth;
      if (!e.variable.empty() && e.multi_hop && !(e.min_hops == 1 && e.max_hops == 1)) {
        throw QueryError(Errc::kInvalidQuery, e.pos,
                         "a relationship collection name ('" + e.variable +
                             "') cannot be given to a condition of several hops");
      }
      st.edges.push_back(std::move(e));
      ParseNode(st);
    }
  }

  TokenCursor& in_;
  query::ExpressionParser& expr_;
  const AdtQueryLimits& limits_;
};

// ---- Binding -------------------------------------------------------------------------------

// A literal a property index can look up: a string, number, boolean or null, or a negated
// number.
std::optional<json::value> IndexableLiteral(const Expr& e) {
  if (e.kind == ExprKind::kLiteral) {
    const json::value& v = e.literal;
    if (v.is_string() || v.is_number() || v.is_bool() || v.is_null()) return v;
    return std::nullopt;
  }
  if (e.kind == ExprKind::kNegate && e.children[0]->kind == ExprKind::kLiteral) {
    const json::value& v = e.children[0]->literal;
    if (v.is_int64() && v.get_int64() != INT64_MIN) return json::value(-v.get_int64());
    if (v.is_number()) return json::value(-v.to_number<double>());
  }
  return std::nullopt;
}

// The smallest string greater than every string starting with `prefix`, if there is one.
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF)
    prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

class Binder {
 public:
  Binder(AdtPlan& plan, const AdtQueryLimits& limits) : plan_(plan), limits_(limits) {}

  void Bind(Statement& st) {
    plan_.star = st.star;
    plan_.count = st.count;
    plan_.top = st.top;
    DeclareCollections(st);
    plan_.single = plan_.aliases.size() == 1 && !st.match;
    if (st.where) {
      CheckWidths(*st.where);
      uint32_t and_or = 0;
      CountAndOr(*st.where, and_or);
      if (and_or > limits_.max_and_or) {
        throw QueryError(Errc::kLimitExceeded, st.where->pos,
                         "the condition has " + std::to_string(and_or) +
                             " AND / OR operators; the limit is " +
                             std::to_string(limits_.max_and_or));
      }
      RewriteIsOfModel(*st.where);
    }
    BindItems(st);
    std::vector<const Expr*> conjuncts;
    if (st.where) {
      if (st.where->kind == ExprKind::kAnd) {
        for (const auto& c : st.where->children)
          conjuncts.push_back(c.get());
      } else {
        conjuncts.push_back(st.where.get());
      }
    }
    std::vector<uint64_t> masks;
    for (const Expr* c : conjuncts) {
      plan_.conjuncts.push_back(query::BindOrThrow(*c, BindOpts()));
      uint64_t m = 0;
      Mask(plan_.conjuncts.back(), m);
      masks.push_back(m);
    }
    BuildSteps(st, conjuncts);
    // Schedule each conjunct right after the step that binds the last collection it reads.
    for (size_t i = 0; i < masks.size(); ++i) {
      if (masks[i] == 0) plan_.constant_conjuncts.push_back(static_cast<uint32_t>(i));
    }
    for (std::vector<Step>& program : plan_.programs) {
      uint64_t bound = 0;
      std::vector<bool> placed(masks.size(), false);
      for (size_t i = 0; i < masks.size(); ++i)
        placed[i] = masks[i] == 0;
      for (Step& s : program) {
        bound |= uint64_t{1} << s.root;
        if (s.rel_root >= 0) bound |= uint64_t{1} << s.rel_root;
        for (size_t i = 0; i < masks.size(); ++i) {
          if (!placed[i] && (masks[i] & ~bound) == 0) {
            s.conjuncts.push_back(static_cast<uint32_t>(i));
            placed[i] = true;
          }
        }
      }
    }
  }

 private:
  uint32_t AddRoot(const std::string& alias, bool relationship, Position pos) {
    for (const std::string& a : plan_.aliases) {
      if (!alias.empty() && a == alias) {
        throw QueryError(Errc::kInvalidQuery, pos, "collection name '" + alias + "' is used twice");
      }
    }
    plan_.aliases.push_back(alias);
    plan_.is_relationship.push_back(relationship);
    return static_cast<uint32_t>(plan_.aliases.size() - 1);
  }

  void DeclareCollections(const Statement& st) {
    if (st.match) {
      for (const MatchNode& n : st.nodes)
        node_roots_.push_back(AddRoot(n.alias, false, n.pos));
      for (const MatchEdge& e : st.edges) {
        edge_roots_.push_back(
            e.variable.empty() ? -1 : static_cast<int>(AddRoot(e.variable, true, e.pos)));
      }
      return;
    }
    AddRoot(st.from_alias, st.relationships, st.from_pos);
    for (const JoinClause& j : st.joins) {
      std::optional<uint32_t> src = Find(j.source);
      if (!src || plan_.is_relationship[*src]) {
        throw QueryError(Errc::kInvalidQuery, j.source_pos,
                         "'" + j.source + "' is not a twin collection named before this JOIN");
      }
      join_sources_.push_back(*src);
      join_targets_.push_back(AddRoot(j.target, false, j.pos));
      join_rels_.push_back(
          j.rel_alias.empty() ? -1 : static_cast<int>(AddRoot(j.rel_alias, true, j.pos)));
    }
  }

  // A collection by alias: exact, else ignoring case.
  std::optional<uint32_t> Find(std::string_view name) const {
    for (size_t i = 0; i < plan_.aliases.size(); ++i) {
      if (!plan_.aliases[i].empty() && plan_.aliases[i] == name) return static_cast<uint32_t>(i);
    }
    for (size_t i = 0; i < plan_.aliases.size(); ++i) {
      if (!plan_.aliases[i].empty() && strings::IEquals(plan_.aliases[i], name)) {
        return static_cast<uint32_t>(i);
      }
    }
    return std::nullopt;
  }

  std::optional<query::RootBinding> Resolve(std::span<const std::string> names) const {
    if (auto r = Find(names[0])) return query::RootBinding{*r, 1};
    if (plan_.single) return query::RootBinding{0, 0};
    return std::nullopt;
  }

  query::BindOptions BindOpts() const {
    query::BindOptions o;
    o.functions = &AdtFunctions();
    o.resolve_root = [this](std::span<const std::string> names) { return Resolve(names); };
    return o;
  }

  void CheckWidths(const Expr& e) const {
    if (e.kind == ExprKind::kIn && e.children.size() - 1 > limits_.max_in_items) {
      throw QueryError(Errc::kLimitExceeded, e.pos,
                       "an IN / NIN list has " + std::to_string(e.children.size() - 1) +
                           " items; the limit is " + std::to_string(limits_.max_in_items));
    }
    for (const auto& c : e.children)
      CheckWidths(*c);
  }

  static void CountAndOr(const Expr& e, uint32_t& n) {
    if (e.kind == ExprKind::kAnd || e.kind == ExprKind::kOr) {
      n += static_cast<uint32_t>(e.children.size() - 1);
    }
    for (const auto& c : e.children)
      CountAndOr(*c, n);
  }

  static ExprPtr NameExpr(std::string name, Position pos, ExprKind kind = ExprKind::kName) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->name = std::move(name);
    e->pos = pos;
    return e;
  }
  static ExprPtr Member(ExprPtr base, std::string name) {
    ExprPtr e = NameExpr(std::move(name), base->pos, ExprKind::kMember);
    e->depth = static_cast<uint16_t>(base->depth + 1);
    e->children.push_back(std::move(base));
    return e;
  }

  // IS_OF_MODEL([collection,] 'dtmi' [, exact]) → IS_OF_MODEL(collection.$metadata.$model,
  // 'dtmi', true|false), remembering which collection each call tests.
  void RewriteIsOfModel(Expr& e) {
    for (auto& c : e.children)
      RewriteIsOfModel(*c);
    if (e.kind != ExprKind::kCall || !strings::IEquals(e.name, "IS_OF_MODEL")) return;
    std::vector<ExprPtr> args = std::move(e.children);
    e.children.clear();
    size_t i = 0;
    std::optional<uint32_t> root;
    if (!args.empty() && args[0]->kind == ExprKind::kName) {
      root = Find(args[0]->name);
      if (!root) {
        throw QueryError(Errc::kInvalidQuery, args[0]->pos,
                         "'" + args[0]->name + "' is not a collection name");
      }
      i = 1;
    } else if (plan_.single) {
      root = 0;
    } else {
      throw QueryError(Errc::kInvalidQuery, e.pos,
                       "IS_OF_MODEL needs a twin collection name when the query has several: "
                       "IS_OF_MODEL(T, 'dtmi:…;1')");
    }
    if (plan_.is_relationship[*root]) {
      throw QueryError(Errc::kInvalidQuery, e.pos,
                       "IS_OF_MODEL applies to twins, not relationships");
    }
    if (i >= args.size() || args[i]->kind != ExprKind::kLiteral || !args[i]->literal.is_string()) {
      throw QueryError(Errc::kInvalidQuery, e.pos, "IS_OF_MODEL takes a model id string");
    }
    bool exact = false;
    if (i + 1 < args.size()) {
      const Expr& x = *args[i + 1];
      if (x.kind != ExprKind::kName || !strings::IEquals(x.name, "exact") || i + 2 < args.size()) {
        throw QueryError(Errc::kInvalidQuery, x.pos,
                         "IS_OF_MODEL takes a collection, a model id and `exact`, in that order");
      }
      exact = true;
    }
    std::string alias = plan_.aliases[*root];
    ExprPtr model = alias.empty() ? Member(NameExpr("$metadata", e.pos), "$model")
                                  : Member(Member(NameExpr(alias, e.pos), "$metadata"), "$model");
    e.children.push_back(std::move(model));
    e.children.push_back(std::move(args[i]));
    auto flag = std::make_unique<Expr>();
    flag->kind = ExprKind::kLiteral;
    flag->literal = exact;
    flag->pos = e.pos;
    e.children.push_back(std::move(flag));
    uint16_t depth = 1;
    for (const auto& c : e.children)
      depth = std::max<uint16_t>(depth, c->depth);
    e.depth = static_cast<uint16_t>(depth + 1);
    model_calls_.push_back({&e, *root, exact});
  }

  static bool IsPath(const Expr& e) {
    const Expr* cur = &e;
    while (cur->kind == ExprKind::kMember ||
           (cur->kind == ExprKind::kIndex && cur->children[1]->kind == ExprKind::kLiteral)) {
      cur = cur->children[0].get();
    }
    return cur->kind == ExprKind::kName;
  }

  void BindItems(const Statement& st) {
    std::vector<std::string> names;
    int unnamed = 0;
    for (const SelectItem& item : st.items) {
      if (!IsPath(*item.expr)) {
        throw QueryError(Errc::kInvalidQuery, item.pos,
                         "SELECT takes *, COUNT(), collection names or their properties");
      }
      internal::Item out;
      out.expr = query::BindOrThrow(*item.expr, BindOpts());
      if (!item.alias.empty()) {
        out.name = item.alias;
      } else if (out.expr.steps.empty()) {
        out.name = plan_.aliases[out.expr.root];
        if (out.name.empty()) out.name = item.expr->name;
      } else if (!out.expr.steps.back().is_index) {
        out.name = out.expr.steps.back().key;
      } else {
        out.name = "$" + std::to_string(++unnamed);
      }
      for (const std::string& n : names) {
        if (n == out.name) {
          throw QueryError(Errc::kInvalidQuery, item.pos,
                           "duplicate output name '" + n + "'; give one of them a name with AS");
        }
      }
      names.push_back(out.name);
      plan_.items.push_back(std::move(out));
    }
  }

  static void Mask(const BoundExpr& b, uint64_t& m) {
    if (b.op == BoundOp::kPath && b.args.empty()) m |= uint64_t{1} << b.root;
    for (const BoundExpr& a : b.args)
      Mask(a, m);
  }

  // `collection.member` (or `member` with one collection) → (root, member).
  std::optional<std::pair<uint32_t, std::string>> SimplePath(const Expr& e) const {
    if (e.kind == ExprKind::kName && plan_.single)
      return std::pair<uint32_t, std::string>{0, e.name};
    if (e.kind != ExprKind::kMember || e.children[0]->kind != ExprKind::kName) return std::nullopt;
    auto root = Find(e.children[0]->name);
    if (!root) return std::nullopt;
    return std::pair<uint32_t, std::string>{*root, e.name};
  }

  // Ids from `c.<key> = 'x'` or `c.<key> IN ['x', …]` for the collection `root`.
  std::optional<std::vector<std::string>> IdsOf(const Expr& e, uint32_t root,
                                                std::string_view key) const {
    std::vector<std::string> ids;
    auto is_key = [&](const Expr& x) {
      auto p = SimplePath(x);
      return p && p->first == root && p->second == key;
    };
    if (e.kind == ExprKind::kBinary && e.op == BinaryOp::kEq) {
      for (int side = 0; side < 2; ++side) {
        const Expr& a = *e.children[side];
        const Expr& b = *e.children[1 - side];
        if (is_key(a) && b.kind == ExprKind::kLiteral && b.literal.is_string()) {
          ids.emplace_back(b.literal.get_string());
          return ids;
        }
      }
    }
    if (e.kind == ExprKind::kIn && !e.negated && is_key(*e.children[0])) {
      for (size_t i = 1; i < e.children.size(); ++i) {
        const Expr& b = *e.children[i];
        if (b.kind != ExprKind::kLiteral) return std::nullopt;
        if (b.literal.is_string()) ids.emplace_back(b.literal.get_string());
      }
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      return ids;
    }
    return std::nullopt;
  }

  // A top-level property of the twin collection `root` (`root.name`, or `name` with a single
  // collection), not one of the $ members.
  std::optional<std::string> PropertyOf(const Expr& e, uint32_t root) const {
    const std::string* name = nullptr;
    if (e.kind == ExprKind::kName && plan_.single && root == 0 && !Find(e.name)) {
      name = &e.name;
    } else if (e.kind == ExprKind::kMember && e.children[0]->kind == ExprKind::kName &&
               Find(e.children[0]->name) == root) {
      name = &e.name;
    }
    if (name == nullptr || name->empty() || (*name)[0] == '$') return std::nullopt;
    return *name;
  }

  // The property index filter a conjunct implies for `root` (a superset of the twins for
  // which it holds): `p = lit`, `p IN [lit, …]`, `p < lit` (and <=, >, >=, either side),
  // `p BETWEEN lit AND lit`, STARTSWITH(p, 'prefix').
  std::optional<GraphView::PropertyFilter> FilterOf(const Expr& e, uint32_t root) const {
    GraphView::PropertyFilter f;
    auto ranged = [](const json::value& v) { return v.is_number() || v.is_string(); };
    if (e.kind == ExprKind::kBinary && query::IsComparison(e.op) && e.op != BinaryOp::kNe) {
      for (int side = 0; side < 2; ++side) {
        auto name = PropertyOf(*e.children[side], root);
        auto lit = IndexableLiteral(*e.children[1 - side]);
        if (!name || !lit) continue;
        f.name = std::move(*name);
        BinaryOp op = e.op;
        if (side == 1) {  // lit < p is p > lit
          op = op == BinaryOp::kLt   ? BinaryOp::kGt
               : op == BinaryOp::kLe ? BinaryOp::kGe
               : op == BinaryOp::kGt ? BinaryOp::kLt
               : op == BinaryOp::kGe ? BinaryOp::kLe
                                     : op;
        }
        if (op == BinaryOp::kEq) {
          f.values.push_back(std::move(*lit));
        } else if (!ranged(*lit)) {
          return std::nullopt;
        } else if (op == BinaryOp::kGt || op == BinaryOp::kGe) {
          f.lo = std::move(*lit);
        } else {
          f.hi = std::move(*lit);
        }
        return f;
      }
      return std::nullopt;
    }
    if (e.kind == ExprKind::kIn && !e.negated) {
      auto name = PropertyOf(*e.children[0], root);
      if (!name) return std::nullopt;
      f.name = std::move(*name);
      for (size_t i = 1; i < e.children.size(); ++i) {
        auto lit = IndexableLiteral(*e.children[i]);
        if (!lit) return std::nullopt;
        f.values.push_back(std::move(*lit));
      }
      if (f.values.empty()) return std::nullopt;
      return f;
    }
    if (e.kind == ExprKind::kBetween && !e.negated) {
      auto name = PropertyOf(*e.children[0], root);
      auto lo = IndexableLiteral(*e.children[1]);
      auto hi = IndexableLiteral(*e.children[2]);
      if (!name || !lo || !hi || !ranged(*lo) || lo->is_string() != hi->is_string()) {
        return std::nullopt;
      }
      f.name = std::move(*name);
      f.lo = std::move(*lo);
      f.hi = std::move(*hi);
      return f;
    }
    if (e.kind == ExprKind::kCall && e.children.size() == 2 &&
        (strings::IEquals(e.name, "STARTSWITH") || strings::IEquals(e.name, "STARTS_WITH"))) {
      auto name = PropertyOf(*e.children[0], root);
      const Expr& prefix = *e.children[1];
      if (!name || prefix.kind != ExprKind::kLiteral || !prefix.literal.is_string()) {
        return std::nullopt;
      }
      f.name = std::move(*name);
      std::string p(prefix.literal.get_string());
      f.lo = json::value(p);
      if (auto next = PrefixSuccessor(p)) f.hi = json::value(*next);
      return f;
    }
    return std::nullopt;
  }

  // How a start at `root` can avoid a scan, best first.
  enum Strength { kScan, kIndexed, kEquality, kIds };

  // The lookups a start at `root` can use instead of a scan: the first $dtId (`key`) conjunct;
  // else, for twins, every property filter and the first IS_OF_MODEL conjunct (Execute picks
  // the cheapest). Returns the best there is.
  Strength Hint(Step& s, uint32_t root, std::string_view key,
                const std::vector<const Expr*>& conjuncts, bool twins = true) const {
    for (const Expr* c : conjuncts) {
      if (auto ids = IdsOf(*c, root, key)) {
        s.has_ids = true;
        s.ids = std::move(*ids);
        return kIds;
      }
    }
    if (!twins) return kScan;
    Strength best = kScan;
    for (const Expr* c : conjuncts) {
      for (const ModelCall& m : model_calls_) {
        if (m.call == c && m.root == root && !s.has_model) {
          s.has_model = true;
          s.model = std::string(c->children[1]->literal.get_string());
          s.exact = m.exact;
          best = kIndexed;
        }
      }
    }
    for (const Expr* c : conjuncts) {
      auto f = FilterOf(*c, root);
      if (!f) continue;
      best = std::max(best, f->values.empty() ? kIndexed : kEquality);
      // Two bounds on one property (p >= 1 AND p < 5) make one range.
      bool merged = false;
      if (f->values.empty()) {
        for (auto& g : s.filters) {
          const json::value* bound = f->lo ? &*f->lo : &*f->hi;
          const json::value* other = g.lo ? &*g.lo : g.hi ? &*g.hi : nullptr;
          if (g.name != f->name || !g.values.empty() || !other ||
              other->is_string() != bound->is_string()) {
            continue;
          }
          if (f->lo && !g.lo && !f->hi) {
            g.lo = std::move(f->lo);
            merged = true;
          } else if (f->hi && !g.hi && !f->lo) {
            g.hi = std::move(f->hi);
            merged = true;
          }
          if (merged) break;
        }
      }
      if (!merged) s.filters.push_back(std::move(*f));
    }
    return best;
  }

  // The graph of a JOIN chain or a MATCH pattern: twin collections joined by relationship
  // conditions (a tree). The walk starts at the first twin collection with a $dtId lookup;
  // else every collection with an indexable conjunct (IS_OF_MODEL, a property condition) is a
  // candidate start — a program each — and Execute takes the one whose start the view counts
  // fewest twins for (ties: equalities first, then in order); else the FROM collection
  // (MATCH: the first node). A program follows every edge from whichever end is bound,
  // forwards or backwards.
  struct Edge {
    uint32_t from, to;  // as written: JOIN source → target; MATCH left → right
    int rel_root;
    Dir dir;
    std::vector<std::string> names;
    uint32_t min_hops = 1, max_hops = 1;
    bool multi_hop = false;
  };

  void BuildSteps(const Statement& st, const std::vector<const Expr*>& conjuncts) {
    if (st.relationships) {
      Step start;
      start.kind = Step::kStartRelationships;
      Hint(start, 0, "$sourceId", conjuncts, /*twins=*/false);
      plan_.programs.push_back({std::move(start)});
      return;
    }
    std::vector<Edge> edges;
    std::vector<uint32_t> twins;  // candidate starts, in order of preference when tied
    if (st.match) {
      twins = node_roots_;
      for (size_t i = 0; i < st.edges.size(); ++i) {
        const MatchEdge& e = st.edges[i];
        edges.push_back({node_roots_[i], node_roots_[i + 1], edge_roots_[i], e.dir, e.names,
                         e.min_hops, e.max_hops,
                         e.multi_hop && !(e.min_hops == 1 && e.max_hops == 1)});
      }
    } else {
      twins.push_back(0);
      for (size_t i = 0; i < st.joins.size(); ++i) {
        twins.push_back(join_targets_[i]);
        edges.push_back({join_sources_[i],
                         join_targets_[i],
                         join_rels_[i],
                         Dir::kOut,
                         {st.joins[i].relationship}});
      }
    }
    // Candidate starts: the first collection with $dtId lookups alone; else every collection
    // with an indexable conjunct (equalities first), else the first collection.
    std::vector<std::pair<Strength, Step>> candidates;
    for (uint32_t root : twins) {
      Step cand;
      cand.kind = Step::kStartTwins;
      cand.root = root;
      Strength strength = Hint(cand, root, "$dtId", conjuncts);
      if (strength == kIds) {
        candidates.clear();
        candidates.emplace_back(strength, std::move(cand));
        break;
      }
      if (strength > kScan || (root == twins[0] && candidates.empty())) {
        candidates.emplace_back(strength, std::move(cand));
      }
    }
    if (candidates.size() > 1 && candidates[0].first == kScan) candidates.erase(candidates.begin());
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (auto& [strength, start] : candidates)
      plan_.programs.push_back(Walk(std::move(start), edges));
  }

  // The steps of a walk from `start` over every edge.
  static std::vector<Step> Walk(Step start, const std::vector<Edge>& edges) {
    std::vector<Step> steps;
    uint64_t bound = uint64_t{1} << start.root;
    steps.push_back(std::move(start));
    std::vector<bool> used(edges.size(), false);
    for (size_t placed = 0; placed < edges.size();) {
      size_t before = placed;
      for (size_t i = 0; i < edges.size(); ++i) {
        const Edge& e = edges[i];
        bool forwards = (bound >> e.from) & 1;
        bool backwards = (bound >> e.to) & 1;
        if (used[i] || (!forwards && !backwards)) continue;
        Step f;
        f.kind = Step::kFollow;
        f.from = forwards ? e.from : e.to;
        f.root = forwards ? e.to : e.from;
        f.rel_root = e.rel_root;
        f.names = e.names;
        f.min_hops = e.min_hops;
        f.max_hops = e.max_hops;
        f.multi_hop = e.multi_hop;
        f.dir = e.dir == Dir::kBoth  ? Dir::kBoth
                : forwards           ? e.dir
                : e.dir == Dir::kOut ? Dir::kIn
                                     : Dir::kOut;
        bound |= uint64_t{1} << f.root;
        steps.push_back(std::move(f));
        used[i] = true;
        ++placed;
      }
      if (placed == before) break;  // unreachable: JOINs and patterns are connected
    }
    return steps;
  }

  struct ModelCall {
    const Expr* call;
    uint32_t root;
    bool exact;
  };

  AdtPlan& plan_;
  const AdtQueryLimits& limits_;
  std::vector<uint32_t> node_roots_;
  std::vector<int> edge_roots_;
  std::vector<uint32_t> join_sources_, join_targets_;
  std::vector<int> join_rels_;
  std::vector<ModelCall> model_calls_;
};

// ---- Execution -----------------------------------------------------------------------------

std::string_view StringMember(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

struct Position2 {
  std::string k1, k2;    // the start document's key: ($dtId, "") or ($sourceId, $relationshipId)
  uint64_t n = 0;        // rows already returned from it
  uint64_t emitted = 0;  // rows returned by earlier pages (TOP)
  uint64_t program = 0;  // the plan's program the first page chose
  bool operator<(const Position2& o) const { return std::tie(k1, k2) < std::tie(o.k1, o.k2); }
};

std::string HexEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<std::string> HexDecode(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int a = nib(s[i]), b = nib(s[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    out += static_cast<char>(a * 16 + b);
  }
  return out;
}

constexpr std::string_view kTokenPrefix = "adtq1.";

std::string EncodeToken(const AdtPlan& plan, const Position2& p) {
  json::object o;
  o["q"] = plan.text_hash;
  o["a"] = p.k1;
  o["b"] = p.k2;
  o["n"] = p.n;
  o["e"] = p.emitted;
  if (p.program != 0) o["p"] = p.program;
  return std::string(kTokenPrefix) + HexEncode(json::serialize(o));
}

Result<Position2> DecodeToken(const AdtPlan& plan, std::string_view token) {
  auto bad = [] {
    return Error(Errc::kInvalidQuery, "the continuation token is not one this query returned");
  };
  if (token.substr(0, kTokenPrefix.size()) != kTokenPrefix) return bad();
  auto text = HexDecode(token.substr(kTokenPrefix.size()));
  if (!text || text->size() > 4096) return bad();
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) return bad();
  const json::object& o = v.get_object();
  const json::value* q = o.if_contains("q");
  const json::value* a = o.if_contains("a");
  const json::value* b = o.if_contains("b");
  const json::value* n = o.if_contains("n");
  const json::value* e = o.if_contains("e");
  if (!q || !a || !b || !n || !e || !a->is_string() || !b->is_string()) return bad();
  auto u64 = [](const json::value* x) -> std::optional<uint64_t> {
    if (x->is_uint64()) return x->get_uint64();
    if (x->is_int64() && x->get_int64() >= 0) return static_cast<uint64_t>(x->get_int64());
    return std::nullopt;
  };
  auto qh = u64(q), nn = u64(n), ee = u64(e);
  if (!qh || !nn || !ee || *qh != plan.text_hash) return bad();
  std::optional<uint64_t> pp = uint64_t{0};
  if (const json::value* x = o.if_contains("p")) pp = u64(x);
  if (!pp || *pp >= plan.programs.size()) return bad();
  Position2 p;
  p.k1 = std::string(a->get_string());
  p.k2 = std::string(b->get_string());
  p.n = *nn;
  p.emitted = *ee;
  p.program = *pp;
  return p;
}

class Executor {
 public:
  Executor(const AdtPlan& plan, const GraphView& view) : plan_(plan), view_(view) {
    roots_.resize(plan.aliases.size());
  }

  AdtPage Run(const std::optional<Position2>& resume, uint64_t max_items) {
    resume_ = resume;
    emitted_before_ = resume ? resume->emitted : 0;
    limit_ = max_items;
    if (plan_.top)
      limit_ = std::min<uint64_t>(limit_, *plan_.top - std::min(*plan_.top, emitted_before_));
    if (plan_.count) limit_ = UINT64_MAX;
    bool constants_hold = true;
    for (uint32_t c : plan_.constant_conjuncts)
      constants_hold = constants_hold && Holds(c);
    // The program whose start visits the fewest twins (a continuation keeps the first page's).
    program_ = resume ? resume->program : 0;
    std::vector<Access> access(plan_.programs.size());
    for (size_t i = 0; i < plan_.programs.size(); ++i) {
      if (resume && i != program_) continue;
      access[i] = Choose(plan_.programs[i][0]);
      if (!resume && access[i].cost < access[program_].cost) program_ = i;
    }
    steps_ = &plan_.programs[program_];
    if (constants_hold && (limit_ > 0 || plan_.count)) Start((*steps_)[0], access[program_]);
    if (plan_.count) {
      uint64_t n = plan_.top ? std::min(count_, *plan_.top) : count_;
      json::object row;
      row["COUNT"] = n;
      page_.rows.clear();
      page_.rows.emplace_back(std::move(row));
    }
    page_.examined = examined_;
    return std::move(page_);
  }

 private:
  bool Holds(uint32_t c) const {
    return query::IsTrue(query::Evaluate(plan_.conjuncts[c], roots_));
  }
  bool Conjuncts(const Step& s) const {
    for (uint32_t c : s.conjuncts)
      if (!Holds(c)) return false;
    return true;
  }
  // How a start step visits its twins: $dtId lookups, the model index, one of its property
  // filters, or a scan; `cost` the twins it visits by the view's counts (SIZE_MAX: a scan).
  struct Access {
    size_t cost = SIZE_MAX;
    const GraphView::PropertyFilter* filter = nullptr;
  };
  Access Choose(const Step& s) const {
    Access a;
    if (s.kind == Step::kStartRelationships || s.has_ids) {
      a.cost = s.has_ids ? s.ids.size() : SIZE_MAX;
      return a;
    }
    // A model index without counts still beats a scan.
    if (s.has_model) a.cost = view_.CountTwinsOfModel(s.model, s.exact).value_or(SIZE_MAX - 1);
    for (const GraphView::PropertyFilter& f : s.filters) {
      std::optional<size_t> n = view_.CountTwinsByProperty(f, a.cost);
      if (n && *n < a.cost) {
        a.filter = &f;
        a.cost = *n;
      }
    }
    return a;
  }

  void Start(const Step& s, const Access& access) {
    bool skipping = resume_.has_value();
    auto before = [&](std::string_view k1, std::string_view k2) {
      if (!skipping) return false;
      // (k1, k2) < the resume point, compared as string views on every standard library.
      std::string_view r1 = resume_->k1, r2 = resume_->k2;
      return k1 < r1 || (k1 == r1 && k2 < r2);
    };
    if (s.kind == Step::kStartRelationships) {
      std::vector<json::object> rels;
      auto visit = [&](const json::object& r) {
        ++examined_;
        if (before(StringMember(r, "$sourceId"), StringMember(r, "$relationshipId"))) return true;
        rels.push_back(r);
        return true;
      };
      if (s.has_ids) {
        for (const std::string& src : s.ids)
          view_.ForEachOutgoing(src, "", visit);
      } else {
        view_.ForEachRelationship(visit);
      }
      for (const json::object& r : rels) {
        if (done_) return;
        Begin(StringMember(r, "$sourceId"), StringMember(r, "$relationshipId"));
        roots_[s.root] = query::Root(r);
        if (Conjuncts(s)) Continue(1);
      }
      return;
    }
    // The view's documents stay valid during the query: collect pointers, then follow them.
    std::vector<const json::object*> twins;
    auto collect = [&](const json::object& t) {
      ++examined_;
      if (!before(StringMember(t, "$dtId"), "")) twins.push_back(&t);
      return true;
    };
    if (s.has_ids) {
      for (const std::string& id : s.ids) {
        if (before(id, "")) continue;
        ++examined_;
        if (const json::object* t = view_.Twin(id)) twins.push_back(t);
      }
    } else {
      if (access.filter != nullptr && view_.ForEachTwinByProperty(*access.filter, collect)) {
        // served by the property index
      } else if (s.has_model) {
        view_.ForEachTwinOfModel(s.model, s.exact, collect);
      } else {
        view_.ForEachTwin(collect);
      }
    }
    for (const json::object* t : twins) {
      if (done_) return;
      Begin(StringMember(*t, "$dtId"), "");
      roots_[s.root] = query::Root(*t);
      if (Conjuncts(s)) Continue(1);
    }
  }

  void Begin(std::string_view k1, std::string_view k2) {
    key1_ = k1;
    key2_ = k2;
    produced_ = 0;
    skip_ = resume_ && resume_->k1 == k1 && resume_->k2 == k2 ? resume_->n : 0;
  }

  // Relationships from (kOut) or to (kIn) `id` named one of `names`, with the twin at the
  // other end; kBoth: both, each relationship once. Pointers into the view (valid during the
  // query).
  std::vector<std::pair<const json::object*, std::string_view>> Neighbours(
      std::string_view id, Dir dir, const std::vector<std::string>& names) {
    std::vector<std::pair<const json::object*, std::string_view>> out;
    static const std::vector<std::string> kAny{""};
    const std::vector<std::string>& names_or_any = names.empty() ? kAny : names;
    if (dir != Dir::kIn) {
      for (const std::string& n : names_or_any) {
        view_.ForEachOutgoing(id, n, [&](const json::object& r) {
          ++examined_;
          out.emplace_back(&r, StringMember(r, "$targetId"));
          return true;
        });
      }
    }
    size_t outgoing = out.size();
    if (dir != Dir::kOut) {
      for (const std::string& n : names_or_any) {
        view_.ForEachIncoming(id, n, [&](const json::object& r) {
          ++examined_;
          if (dir == Dir::kBoth && StringMember(r, "$sourceId") == id) return true;  // a loop: seen
          out.emplace_back(&r, StringMember(r, "$sourceId"));
          return true;
        });
      }
    }
    auto key = [](const std::pair<const json::object*, std::string_view>& p) {
      return std::pair(StringMember(*p.first, "$sourceId"),
                       StringMember(*p.first, "$relationshipId"));
    };
    auto by_key = [&](const auto& a, const auto& b) { return key(a) < key(b); };
    if (names.size() > 1) {
      std::sort(out.begin(), out.begin() + static_cast<ptrdiff_t>(outgoing), by_key);
      std::sort(out.begin() + static_cast<ptrdiff_t>(outgoing), out.end(), by_key);
    }
    return out;
  }

  void Continue(size_t step) {
    if (done_) return;
    if (step == steps_->size()) {
      Emit();
      return;
    }
    const Step& s = (*steps_)[step];
    std::string_view from = StringMember(*roots_[s.from].object, "$dtId");
    if (!s.multi_hop) {
      auto next = Neighbours(from, s.dir, s.names);
      for (const auto& [rel, other] : next) {
        if (done_) return;
        const json::object* t = view_.Twin(other);
        if (t == nullptr) continue;
        ++examined_;
        roots_[s.root] = query::Root(*t);
        if (s.rel_root >= 0) roots_[static_cast<size_t>(s.rel_root)] = query::Root(*rel);
        if (Conjuncts(s)) Continue(step + 1);
      }
      roots_[s.root] = {};
      if (s.rel_root >= 0) roots_[static_cast<size_t>(s.rel_root)] = {};
      return;
    }
    // Several hops: the twins whose distance from `from` is within the range, by id.
    std::set<std::string_view> seen{from};
    std::set<std::string_view> frontier{from};
    std::set<std::string_view> found;
    for (uint32_t hop = 1; hop <= s.max_hops && !frontier.empty(); ++hop) {
      std::set<std::string_view> next;
      for (std::string_view id : frontier) {
        for (auto& [rel, other] : Neighbours(id, s.dir, s.names)) {
          if (seen.insert(other).second) next.insert(other);
        }
      }
      if (hop >= s.min_hops) found.insert(next.begin(), next.end());
      frontier = std::move(next);
    }
    for (std::string_view id : found) {
      if (done_) return;
      const json::object* t = view_.Twin(id);
      if (t == nullptr) continue;
      ++examined_;
      roots_[s.root] = query::Root(*t);
      if (Conjuncts(s)) Continue(step + 1);
    }
    roots_[s.root] = {};
  }

  void Emit() {
    if (plan_.count) {
      ++count_;
      return;
    }
    if (skip_ > 0) {
      --skip_;
      ++produced_;
      return;
    }
    if (page_.rows.size() >= limit_) {
      // One row more than the page holds: the continuation points at it.
      bool top_reached = plan_.top && emitted_before_ + page_.rows.size() >= *plan_.top;
      if (!top_reached) {
        Position2 p{key1_, key2_, produced_, emitted_before_ + page_.rows.size(), program_};
        page_.continuation = EncodeToken(plan_, p);
      }
      done_ = true;
      return;
    }
    ++produced_;
    page_.rows.push_back(Row());
  }

  json::value Row() const {
    if (plan_.star && plan_.single) return json::value(*roots_[0].object);
    json::object row;
    if (plan_.star) {
      for (size_t i = 0; i < roots_.size(); ++i) {
        if (!plan_.aliases[i].empty() && roots_[i].object != nullptr) {
          row[plan_.aliases[i]] = *roots_[i].object;
        }
      }
      return row;
    }
    for (const internal::Item& item : plan_.items) {
      query::Value v = query::Evaluate(item.expr, roots_);
      if (v.defined()) row[item.name] = std::move(v).ToJson();
    }
    return row;
  }

  const AdtPlan& plan_;
  const GraphView& view_;
  size_t program_ = 0;
  const std::vector<Step>* steps_ = nullptr;
  std::vector<query::Root> roots_;
  std::optional<Position2> resume_;
  uint64_t emitted_before_ = 0;
  uint64_t limit_ = 0;
  uint64_t examined_ = 0;
  uint64_t count_ = 0;
  bool done_ = false;
  std::string key1_, key2_;
  uint64_t produced_ = 0;
  uint64_t skip_ = 0;
  AdtPage page_;
};

}  // namespace

Result<AdtQuery> AdtQuery::Parse(std::string_view text, const AdtQueryLimits& limits) {
  if (size_t n = CodePoints(text); n > limits.max_chars) {
    return Error(Errc::kLimitExceeded, "query is " + std::to_string(n) +
                                           " characters long; the limit is " +
                                           std::to_string(limits.max_chars));
  }
  query::Limits lex_limits;
  lex_limits.max_length = limits.max_chars * 4 + 4;
  std::string normalised = NormaliseSpaces(text);
  ORRERY_ASSIGN_OR_RETURN(auto tokens, query::Lex(normalised, lex_limits, AdtLexOptions()));
  return query::Catching([&] {
    TokenCursor in(std::move(tokens));
    query::ExpressionParser expr(in, AdtExprOptions());
    Statement st = StatementParser(in, expr, limits).Parse();
    auto plan = std::make_shared<AdtPlan>();
    plan->text = std::string(text);
    plan->text_hash = Fnv1a(text);
    Binder(*plan, limits).Bind(st);
    return AdtQuery(std::move(plan));
  });
}

Result<AdtPage> AdtQuery::Execute(const GraphView& view, const AdtPageRequest& request) const {
  std::optional<Position2> resume;
  if (!request.continuation.empty()) {
    ORRERY_ASSIGN_OR_RETURN(resume, DecodeToken(*plan_, request.continuation));
  }
  struct ViewScope {
    const GraphView* saved;
    explicit ViewScope(const GraphView* v) : saved(t_view) { t_view = v; }
    ~ViewScope() { t_view = saved; }
  } scope(&view);
  Executor exec(*plan_, view);
  return exec.Run(resume, request.max_items == 0 ? 1000 : request.max_items);
}

bool AdtQuery::select_all() const {
  return plan_->star;
}
bool AdtQuery::count() const {
  return plan_->count;
}

}  // namespace orrery::twins
