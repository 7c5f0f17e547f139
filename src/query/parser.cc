#include "query/parser.h"

#include <algorithm>

#include "base/strings.h"
#include "query/query_error.h"

namespace orrery::query {

std::string Describe(const Token& t) {
  if (t.kind == TokenKind::kEnd) return "end of input";
  std::string_view text = t.text;
  constexpr size_t kMax = 40;
  std::string shown(text.substr(0, kMax));
  if (text.size() > kMax) shown += "…";
  if (t.kind == TokenKind::kString) return "string " + shown;
  return "'" + shown + "'";
}

const Token& TokenCursor::Peek(size_t ahead) const {
  return tokens_[std::min(i_ + ahead, tokens_.size() - 1)];
}

const Token& TokenCursor::Next() {
  const Token& t = tokens_[i_];
  if (i_ + 1 < tokens_.size()) ++i_;
  return t;
}

bool TokenCursor::TryKeyword(std::string_view upper) {
  if (!AtKeyword(upper)) return false;
  Next();
  return true;
}

bool TokenCursor::Try(TokenKind k) {
  if (!At(k)) return false;
  Next();
  return true;
}

const Token& TokenCursor::ExpectKeyword(std::string_view upper) {
  if (!AtKeyword(upper)) Fail(upper);
  return Next();
}

const Token& TokenCursor::Expect(TokenKind k, std::string_view what) {
  if (!At(k)) Fail(what.empty() ? TokenKindName(k) : what);
  return Next();
}

void TokenCursor::Fail(std::string_view what) const {
  throw QueryError(Errc::kSyntax, Peek().pos,
                   "expected " + std::string(what) + ", found " + Describe(Peek()));
}

namespace {

constexpr int kPrecOr = 1;
constexpr int kPrecAnd = 2;
constexpr int kPrecNot = 3;
constexpr int kPrecCompare = 4;
constexpr int kPrecAdd = 5;
constexpr int kPrecMul = 6;

std::optional<BinaryOp> BinaryOpOf(TokenKind k) {
  switch (k) {
    case TokenKind::kEq:
      return BinaryOp::kEq;
    case TokenKind::kNe:
      return BinaryOp::kNe;
    case TokenKind::kLt:
      return BinaryOp::kLt;
    case TokenKind::kLe:
      return BinaryOp::kLe;
    case TokenKind::kGt:
      return BinaryOp::kGt;
    case TokenKind::kGe:
      return BinaryOp::kGe;
    case TokenKind::kPlus:
      return BinaryOp::kAdd;
    case TokenKind::kMinus:
      return BinaryOp::kSub;
    case TokenKind::kStar:
      return BinaryOp::kMul;
    case TokenKind::kSlash:
      return BinaryOp::kDiv;
    case TokenKind::kPercent:
      return BinaryOp::kMod;
    default:
      return std::nullopt;
  }
}

int Precedence(BinaryOp op) {
  if (IsComparison(op)) return kPrecCompare;
  return op == BinaryOp::kAdd || op == BinaryOp::kSub ? kPrecAdd : kPrecMul;
}

}  // namespace

bool ExpressionParser::IsReserved(const Token& t) const {
  if (t.kind != TokenKind::kIdentifier) return false;
  // The operator words are reserved in every dialect.
  for (std::string_view w : {"AND", "OR", "NOT", "IN", "BETWEEN"}) {
    if (t.IsKeyword(w)) return true;
  }
  if (options_.nin_operator && t.IsKeyword("NIN")) return true;
  if (options_.sql_forms) {
    for (std::string_view w : {"CASE", "WHEN", "THEN", "ELSE", "END", "LIKE", "IS", "DISTINCT"}) {
      if (t.IsKeyword(w)) return true;
    }
  }
  return std::any_of(options_.reserved.begin(), options_.reserved.end(),
                     [&](std::string_view w) { return t.IsKeyword(w); });
}

void ExpressionParser::Enter() {
  if (++nesting_ > options_.limits.max_depth) {
    throw QueryError(Errc::kLimitExceeded, in_.Peek().pos,
                     "expression is nested too deeply (the limit is " +
                         std::to_string(options_.limits.max_depth) + " levels)");
  }
}

ExprPtr ExpressionParser::Make(ExprKind kind, Position pos, std::vector<ExprPtr> children) {
  if (++nodes_ > options_.limits.max_nodes) {
    throw QueryError(Errc::kLimitExceeded, pos,
                     "query has too many terms (the limit is " +
                         std::to_string(options_.limits.max_nodes) + ")");
  }
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->pos = pos;
  uint32_t depth = 1;
  for (const auto& c : children)
    depth = std::max<uint32_t>(depth, c->depth + 1u);
  if (depth > options_.limits.max_depth) {
    throw QueryError(Errc::kLimitExceeded, pos,
                     "expression is nested too deeply (the limit is " +
                         std::to_string(options_.limits.max_depth) + " levels)");
  }
  e->depth = static_cast<uint16_t>(depth);
  e->children = std::move(children);
  return e;
}

ExprPtr ExpressionParser::Wrap(ExprKind kind, Position pos, ExprPtr child) {
  std::vector<ExprPtr> kids;
  kids.push_back(std::move(child));
  return Make(kind, pos, std::move(kids));
}

ExprPtr ExpressionParser::ParseCase(Position pos) {
  std::vector<ExprPtr> args;
  bool simple = !in_.AtKeyword("WHEN");
  if (simple) args.push_back(Parse());
  if (!in_.AtKeyword("WHEN")) in_.Fail("WHEN");
  while (in_.TryKeyword("WHEN")) {
    if (args.size() + 2 > options_.limits.max_list) {
      throw QueryError(
          Errc::kLimitExceeded, in_.Peek().pos,
          "CASE is too long (the limit is " + std::to_string(options_.limits.max_list) + " items)");
    }
    args.push_back(Parse());
    in_.ExpectKeyword("THEN");
    args.push_back(Parse());
  }
  if (in_.TryKeyword("ELSE")) {
    args.push_back(Parse());
  } else {
    args.push_back(Make(ExprKind::kLiteral, in_.Peek().pos));  // NULL
  }
  if (!in_.AtKeyword("END")) in_.Fail("WHEN, ELSE or END");
  in_.Next();
  ExprPtr e = Make(ExprKind::kCall, pos, std::move(args));
  e->name = simple ? "$CASE_VALUE" : "$CASE";
  return e;
}

ExprPtr ExpressionParser::ParseCast(Position pos, std::string name) {
  // After "CAST(": expr AS type ')'
  std::vector<ExprPtr> args;
  args.push_back(Parse());
  in_.ExpectKeyword("AS");
  const Token& type = in_.Peek();
  if (type.kind != TokenKind::kIdentifier) in_.Fail("a type name");
  Position type_pos = type.pos;
  std::string type_name = strings::ToLower(type.text);
  in_.Next();
  if (in_.Try(TokenKind::kLParen)) {  // nvarchar(max)
    const Token& n = in_.Peek();
    if (n.kind != TokenKind::kIdentifier && n.kind != TokenKind::kNumber) in_.Fail("a type size");
    type_name += "(" + strings::ToLower(n.text) + ")";
    in_.Next();
    in_.Expect(TokenKind::kRParen, "')'");
  }
  in_.Expect(TokenKind::kRParen, "')'");
  ExprPtr t = Make(ExprKind::kLiteral, type_pos);
  t->literal = boost::json::string(type_name);
  args.push_back(std::move(t));
  ExprPtr e = Make(ExprKind::kCall, pos, std::move(args));
  e->name = strings::IEquals(name, "CAST") ? "CAST" : "TRY_CAST";
  return e;
}

ExprPtr ExpressionParser::Parse() {
  return ParseBinary(kPrecOr);
}

ExprPtr ExpressionParser::ParseBinary(int min_prec) {
  ExprPtr left;
  if (min_prec <= kPrecNot && in_.AtKeyword("NOT")) {
    Position pos = in_.Next().pos;
    Enter();
    ExprPtr operand = ParseBinary(kPrecNot);
    Leave();
    std::vector<ExprPtr> kids;
    kids.push_back(std::move(operand));
    left = Make(ExprKind::kNot, pos, std::move(kids));
  } else {
    left = ParseUnary();
  }
  while (true) {
    const Token& t = in_.Peek();
    Position pos = t.pos;
    // AND / OR chains become one n-ary node.
    if ((t.IsKeyword("OR") && min_prec <= kPrecOr) ||
        (t.IsKeyword("AND") && min_prec <= kPrecAnd)) {
      ExprKind kind = t.IsKeyword("OR") ? ExprKind::kOr : ExprKind::kAnd;
      in_.Next();
      ExprPtr right = ParseBinary(kind == ExprKind::kOr ? kPrecAnd : kPrecNot);
      std::vector<ExprPtr> kids;
      for (ExprPtr* side : {&left, &right}) {
        if ((*side)->kind == kind) {
          for (auto& c : (*side)->children)
            kids.push_back(std::move(c));
        } else {
          kids.push_back(std::move(*side));
        }
      }
      if (kids.size() > options_.limits.max_list) {
        throw QueryError(Errc::kLimitExceeded, pos,
                         "too many conditions in one chain (the limit is " +
                             std::to_string(options_.limits.max_list) + ")");
      }
      left = Make(kind, pos, std::move(kids));
      continue;
    }
    if (min_prec <= kPrecCompare && options_.sql_forms) {
      bool like_neg = t.IsKeyword("NOT") && in_.AtKeyword("LIKE", 1);
      if (like_neg || t.IsKeyword("LIKE")) {
        in_.Next();
        if (like_neg) in_.Next();
        std::vector<ExprPtr> kids;
        kids.push_back(std::move(left));
        kids.push_back(ParseBinary(kPrecAdd));
        left = Make(ExprKind::kCall, pos, std::move(kids));
        left->name = "$LIKE";
        if (like_neg) left = Wrap(ExprKind::kNot, pos, std::move(left));
        continue;
      }
      if (t.IsKeyword("IS")) {
        in_.Next();
        bool neg = in_.TryKeyword("NOT");
        in_.ExpectKeyword("NULL");
        std::vector<ExprPtr> kids;
        kids.push_back(std::move(left));
        left = Make(ExprKind::kCall, pos, std::move(kids));
        left->name = "$IS_NULL";
        if (neg) left = Wrap(ExprKind::kNot, pos, std::move(left));
        continue;
      }
    }
    if (min_prec <= kPrecCompare) {
      // [NOT] IN, NIN, [NOT] BETWEEN
      bool negated = t.IsKeyword("NOT") && (in_.AtKeyword("IN", 1) || in_.AtKeyword("BETWEEN", 1));
      size_t ahead = negated ? 1 : 0;
      bool nin = options_.nin_operator && t.IsKeyword("NIN");
      bool in = nin || in_.AtKeyword("IN", ahead);
      if (in || in_.AtKeyword("BETWEEN", ahead)) {
        for (size_t k = 0; k <= ahead; ++k)
          in_.Next();
        std::vector<ExprPtr> kids;
        kids.push_back(std::move(left));
        if (!in) {
          kids.push_back(ParseBinary(kPrecAdd));
          in_.ExpectKeyword("AND");
          kids.push_back(ParseBinary(kPrecAdd));
        } else if (in_.Try(TokenKind::kLParen)) {
          ParseList(TokenKind::kRParen, kids);
        } else if (in_.Try(TokenKind::kLBracket)) {
          ParseList(TokenKind::kRBracket, kids);
        } else {
          in_.Fail("'(' or '[' starting the IN list");
        }
        left = Make(in ? ExprKind::kIn : ExprKind::kBetween, pos, std::move(kids));
        left->negated = negated || nin;
        continue;
      }
    }
    // The bitwise & | ^ bind as + and - do (T-SQL's precedence), so `flags & 4 = 4` compares
    // the masked value.
    if (options_.sql_forms && min_prec <= kPrecAdd &&
        (t.kind == TokenKind::kAmpersand || t.kind == TokenKind::kPipe ||
         t.kind == TokenKind::kCaret)) {
      std::string_view fn = t.kind == TokenKind::kAmpersand ? "$BITAND"
                            : t.kind == TokenKind::kPipe    ? "$BITOR"
                                                            : "$BITXOR";
      in_.Next();
      std::vector<ExprPtr> kids;
      kids.push_back(std::move(left));
      kids.push_back(ParseBinary(kPrecAdd + 1));
      left = Make(ExprKind::kCall, pos, std::move(kids));
      left->name = fn;
      continue;
    }
    auto op = BinaryOpOf(t.kind);
    if (!op || Precedence(*op) < min_prec) return left;
    in_.Next();
    // Left-associative: the right operand binds tighter.
    ExprPtr right = ParseBinary(Precedence(*op) + 1);
    std::vector<ExprPtr> kids;
    kids.push_back(std::move(left));
    kids.push_back(std::move(right));
    left = Make(ExprKind::kBinary, pos, std::move(kids));
    left->op = *op;
  }
}

ExprPtr ExpressionParser::ParseUnary() {
  Enter();
  ExprPtr out;
  const Token& t = in_.Peek();
  if (t.kind == TokenKind::kMinus || t.kind == TokenKind::kPlus) {
    Position pos = in_.Next().pos;
    ExprKind kind = t.kind == TokenKind::kMinus ? ExprKind::kNegate : ExprKind::kPlus;
    std::vector<ExprPtr> kids;
    kids.push_back(ParseUnary());
    out = Make(kind, pos, std::move(kids));
  } else if (options_.sql_forms && t.kind == TokenKind::kTilde) {
    Position pos = in_.Next().pos;
    std::vector<ExprPtr> kids;
    kids.push_back(ParseUnary());
    out = Make(ExprKind::kCall, pos, std::move(kids));
    out->name = "$BITNOT";
  } else {
    out = ParsePostfix(ParsePrimary());
  }
  Leave();
  return out;
}

ExprPtr ExpressionParser::ParsePostfix(ExprPtr base) {
  while (true) {
    if (in_.At(TokenKind::kDot)) {
      Position pos = in_.Next().pos;
      const Token& name = in_.Peek();
      std::string member;
      if (name.kind == TokenKind::kIdentifier) {
        member.assign(name.text);
      } else if (name.kind == TokenKind::kQuotedIdentifier) {
        member = name.value;
      } else {
        in_.Fail("a property name after '.'");
      }
      in_.Next();
      std::vector<ExprPtr> kids;
      kids.push_back(std::move(base));
      base = Make(ExprKind::kMember, pos, std::move(kids));
      base->name = std::move(member);
    } else if (in_.At(TokenKind::kLBracket)) {
      Position pos = in_.Next().pos;
      std::vector<ExprPtr> kids;
      kids.push_back(std::move(base));
      kids.push_back(Parse());
      in_.Expect(TokenKind::kRBracket);
      base = Make(ExprKind::kIndex, pos, std::move(kids));
    } else {
      return base;
    }
  }
}

void ExpressionParser::ParseList(TokenKind close, std::vector<ExprPtr>& into) {
  size_t first = into.size();
  if (in_.Try(close)) return;
  while (true) {
    if (into.size() - first >= options_.limits.max_list) {
      throw QueryError(
          Errc::kLimitExceeded, in_.Peek().pos,
          "list is too long (the limit is " + std::to_string(options_.limits.max_list) + " items)");
    }
    into.push_back(Parse());
    if (in_.Try(close)) return;
    in_.Expect(TokenKind::kComma, close == TokenKind::kRParen ? "',' or ')'" : "',' or ']'");
  }
}

ExprPtr ExpressionParser::ParseObject(Position pos) {
  std::vector<ExprPtr> values;
  std::vector<std::string> keys;
  if (!in_.Try(TokenKind::kRBrace)) {
    while (true) {
      if (values.size() >= options_.limits.max_list) {
        throw QueryError(Errc::kLimitExceeded, in_.Peek().pos,
                         "object is too large (the limit is " +
                             std::to_string(options_.limits.max_list) + " members)");
      }
      const Token& key = in_.Peek();
      if (key.kind == TokenKind::kIdentifier) {
        keys.emplace_back(key.text);
      } else if (key.kind == TokenKind::kString || key.kind == TokenKind::kQuotedIdentifier) {
        keys.push_back(key.value);
      } else {
        in_.Fail("a member name");
      }
      if (std::find(keys.begin(), keys.end() - 1, keys.back()) != keys.end() - 1) {
        throw QueryError(Errc::kSyntax, key.pos, "duplicate member " + Describe(key));
      }
      in_.Next();
      in_.Expect(TokenKind::kColon, "':'");
      values.push_back(Parse());
      if (in_.Try(TokenKind::kRBrace)) break;
      in_.Expect(TokenKind::kComma, "',' or '}'");
    }
  }
  ExprPtr e = Make(ExprKind::kObject, pos, std::move(values));
  e->keys = std::move(keys);
  return e;
}

ExprPtr ExpressionParser::ParsePrimary() {
  const Token& t = in_.Peek();
  Position pos = t.pos;
  switch (t.kind) {
    case TokenKind::kNumber: {
      ExprPtr e = Make(ExprKind::kLiteral, pos);
      e->literal = t.number;
      in_.Next();
      return e;
    }
    case TokenKind::kString: {
      ExprPtr e = Make(ExprKind::kLiteral, pos);
      e->literal = boost::json::string(t.value);
      in_.Next();
      return e;
    }
    case TokenKind::kQuotedIdentifier: {
      ExprPtr e = Make(ExprKind::kName, pos);
      e->name = t.value;
      in_.Next();
      return e;
    }
    case TokenKind::kLParen: {
      in_.Next();
      ExprPtr e = Parse();
      in_.Expect(TokenKind::kRParen, "')'");
      return e;
    }
    case TokenKind::kLBracket: {
      in_.Next();
      std::vector<ExprPtr> items;
      ParseList(TokenKind::kRBracket, items);
      return Make(ExprKind::kArray, pos, std::move(items));
    }
    case TokenKind::kLBrace:
      in_.Next();
      return ParseObject(pos);
    case TokenKind::kIdentifier:
      break;
    default:
      in_.Fail("an expression");
  }
  if (t.IsKeyword("TRUE") || t.IsKeyword("FALSE") || t.IsKeyword("NULL")) {
    ExprPtr e = Make(ExprKind::kLiteral, pos);
    if (!t.IsKeyword("NULL")) e->literal = t.IsKeyword("TRUE");
    in_.Next();
    return e;
  }
  if (t.IsKeyword("UNDEFINED")) {
    in_.Next();
    return Make(ExprKind::kUndefined, pos);
  }
  if (options_.sql_forms && t.IsKeyword("CASE")) {
    in_.Next();
    return ParseCase(pos);
  }
  if (IsReserved(t)) in_.Fail("an expression");
  std::string name(t.text);
  in_.Next();
  if (options_.sql_forms && in_.At(TokenKind::kDot) && in_.At(TokenKind::kIdentifier, 1) &&
      in_.At(TokenKind::kLParen, 2)) {
    in_.Next();
    name += ".";
    name += in_.Next().text;
  }
  if (options_.sql_forms &&
      (strings::IEquals(name, "CAST") || strings::IEquals(name, "TRY_CAST")) &&
      in_.Try(TokenKind::kLParen)) {
    return ParseCast(pos, std::move(name));
  }
  if (!in_.Try(TokenKind::kLParen)) {
    ExprPtr e = Make(ExprKind::kName, pos);
    e->name = std::move(name);
    return e;
  }
  std::vector<ExprPtr> args;
  bool star = false;
  bool distinct = false;
  if (in_.At(TokenKind::kStar) && in_.At(TokenKind::kRParen, 1)) {
    in_.Next();
    in_.Next();
    star = true;
  } else {
    if (options_.sql_forms && in_.TryKeyword("DISTINCT")) distinct = true;
    ParseList(TokenKind::kRParen, args);
  }
  ExprPtr e = Make(ExprKind::kCall, pos, std::move(args));
  e->name = std::move(name);
  e->star = star;
  e->distinct = distinct;
  if (options_.sql_forms && in_.AtKeyword("OVER") && in_.At(TokenKind::kLParen, 1)) {
    return ParseOver(std::move(e));
  }
  return e;
}

ExprPtr ExpressionParser::ParseOver(ExprPtr call) {
  // After the call: OVER '(' clause… ')', each clause at most once, in any order.
  Position pos = in_.Next().pos;
  in_.Next();  // '('
  std::vector<ExprPtr> kids;
  kids.push_back(std::move(call));
  std::vector<std::string_view> seen;
  auto once = [&](std::string_view clause, Position at) {
    if (std::find(seen.begin(), seen.end(), clause) != seen.end()) {
      throw QueryError(Errc::kSyntax, at, "OVER has two " + std::string(clause) + " clauses");
    }
    seen.push_back(clause);
  };
  auto list_item = [&](std::vector<ExprPtr>& into) {
    if (into.size() >= options_.limits.max_list) {
      throw QueryError(
          Errc::kLimitExceeded, in_.Peek().pos,
          "list is too long (the limit is " + std::to_string(options_.limits.max_list) + " items)");
    }
    into.push_back(Parse());
  };
  while (!in_.At(TokenKind::kRParen)) {
    Position at = in_.Peek().pos;
    std::vector<ExprPtr> items;
    std::string_view clause;
    if (in_.TryKeyword("PARTITION")) {
      in_.ExpectKeyword("BY");
      clause = "$PARTITION_BY";
      once("PARTITION BY", at);
      do {
        list_item(items);
      } while (in_.Try(TokenKind::kComma));
    } else if (in_.TryKeyword("ORDER")) {
      in_.ExpectKeyword("BY");
      clause = "$ORDER_BY";
      once("ORDER BY", at);
      do {
        list_item(items);
        ExprPtr dir = Make(ExprKind::kLiteral, in_.Peek().pos);
        bool desc = in_.AtKeyword("DESC");
        if (desc || in_.AtKeyword("ASC")) in_.Next();
        dir->literal = boost::json::string(desc ? "DESC" : "ASC");
        items.push_back(std::move(dir));
      } while (in_.Try(TokenKind::kComma));
    } else if (in_.TryKeyword("LIMIT")) {
      in_.ExpectKeyword("DURATION");
      clause = "$LIMIT_DURATION";
      once("LIMIT DURATION", at);
      in_.Expect(TokenKind::kLParen, "'('");
      items.push_back(Parse());
      in_.Expect(TokenKind::kComma, "','");
      items.push_back(Parse());
      in_.Expect(TokenKind::kRParen, "')'");
    } else if (in_.TryKeyword("WHEN")) {
      clause = "$WHEN";
      once("WHEN", at);
      items.push_back(Parse());
    } else {
      in_.Fail("PARTITION BY, ORDER BY, LIMIT DURATION, WHEN or ')'");
    }
    ExprPtr c = Make(ExprKind::kCall, at, std::move(items));
    c->name = clause;
    kids.push_back(std::move(c));
  }
  in_.Next();  // ')'
  ExprPtr e = Make(ExprKind::kCall, pos, std::move(kids));
  e->name = "$OVER";
  return e;
}

Result<ExprPtr> ParseExpression(std::string_view text, const ExprOptions& options) {
  ORRERY_ASSIGN_OR_RETURN(auto tokens, Lex(text, options.limits, options.lex));
  return Catching([&] {
    TokenCursor in(std::move(tokens));
    ExpressionParser parser(in, options);
    ExprPtr e = parser.Parse();
    if (!in.AtEnd()) in.Fail("an operator or end of input");
    return e;
  });
}

}  // namespace orrery::query
