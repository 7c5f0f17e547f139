// The IoT Hub statement grammar over the shared expression parser (grammar in hub_query.h
// and docs/query.md).
#include "query/iothub/statement.h"
#include "query/query_error.h"

namespace orrery::query {

std::string_view HubCollectionName(HubCollection c) {
  switch (c) {
    case HubCollection::kDevices:
      return "devices";
    case HubCollection::kModules:
      return "devices.modules";
    case HubCollection::kJobs:
      return "devices.jobs";
  }
  return "?";
}

Limits HubLimits() {
  Limits l;
  l.max_length = 8192;
  return l;
}

const ExprOptions& HubExprOptions() {
  static const ExprOptions options = [] {
    ExprOptions o;
    o.reserved = {"SELECT", "TOP", "FROM", "WHERE", "GROUP", "BY", "AS"};
    o.nin_operator = true;
    o.limits = HubLimits();
    return o;
  }();
  return options;
}

namespace {

uint64_t ParseTop(TokenCursor& in) {
  const Token& t = in.Peek();
  if (t.kind != TokenKind::kNumber) in.Fail("a row count after TOP");
  if (t.number.is_uint64()) return in.Next().number.get_uint64();
  if (t.number.is_int64() && t.number.get_int64() >= 0) {
    return static_cast<uint64_t>(in.Next().number.get_int64());
  }
  throw QueryError(Errc::kInvalidQuery, t.pos,
                   "TOP takes a non-negative integer, not " + std::string(t.text));
}

HubCollection ParseFrom(TokenCursor& in) {
  constexpr std::string_view kWhat = "devices, devices.modules or devices.jobs";
  if (!in.AtKeyword("DEVICES")) in.Fail(kWhat);
  in.Next();
  if (!in.Try(TokenKind::kDot)) return HubCollection::kDevices;
  if (in.TryKeyword("MODULES")) return HubCollection::kModules;
  if (in.TryKeyword("JOBS")) return HubCollection::kJobs;
  in.Fail("modules or jobs after 'devices.'");
}

void ExpectEnd(TokenCursor& in, std::string_view what) {
  if (!in.AtEnd()) in.Fail(what);
}

}  // namespace

HubStatement ParseHubStatement(TokenCursor& in, ExpressionParser& parser) {
  HubStatement st;
  in.ExpectKeyword("SELECT");
  if (in.TryKeyword("TOP")) st.top = ParseTop(in);
  if (in.Try(TokenKind::kStar)) {
    st.star = true;
  } else {
    while (true) {
      HubSelectItem item;
      item.pos = in.Peek().pos;
      item.expr = parser.Parse();
      if (in.TryKeyword("AS")) {
        const Token& alias = in.Peek();
        if (alias.kind == TokenKind::kIdentifier && !parser.IsReserved(alias)) {
          item.alias = std::string(alias.text);
        } else if (alias.kind == TokenKind::kString) {
          item.alias = alias.value;
        } else {
          in.Fail("an alias after AS");
        }
        in.Next();
      }
      st.items.push_back(std::move(item));
      if (!in.Try(TokenKind::kComma)) break;
      if (st.items.size() >= HubExprOptions().limits.max_list) {
        throw QueryError(Errc::kLimitExceeded, in.Peek().pos, "too many SELECT items");
      }
    }
  }
  if (!in.AtKeyword("FROM")) in.Fail(st.star ? "FROM" : "',', AS or FROM");
  in.Next();
  st.from = ParseFrom(in);
  if (in.TryKeyword("WHERE")) st.where = parser.Parse();
  if (in.TryKeyword("GROUP")) {
    in.ExpectKeyword("BY");
    do {
      if (st.group_by.size() >= HubExprOptions().limits.max_list) {
        throw QueryError(Errc::kLimitExceeded, in.Peek().pos, "too many GROUP BY expressions");
      }
      st.group_by.push_back(parser.Parse());
    } while (in.Try(TokenKind::kComma));
    ExpectEnd(in, "',' or end of input");
  } else {
    ExpectEnd(
        in, st.where ? "an operator, GROUP BY or end of input" : "WHERE, GROUP BY or end of input");
  }
  return st;
}

ExprPtr ParseHubConditionExpr(TokenCursor& in, ExpressionParser& parser) {
  ExprPtr e = parser.Parse();
  ExpectEnd(in, "an operator or end of input");
  return e;
}

}  // namespace orrery::query
