// The ASA dialect's statement grammar over the shared expression parser (docs/stream.md):
//
//   query     := { CREATE TABLE name ( column type { , column type } ) [ ; ] }
//                [ WITH step { , step } ] statement { [ ; ] statement } [ ; ]
//   step      := name AS ( statement )
//   statement := select { UNION [ ALL ] select }
//   select    := SELECT item { , item } [ INTO name ] FROM name [ [ AS ] alias ] { apply }
//                [ PARTITION BY expr ] [ TIMESTAMP BY expr [ OVER expr { , expr } ] { apply } ]
//                [ PARTITION BY expr ] [ match_recognize ] { join } [ PARTITION BY expr ] [ WHERE
//                expr ] [ GROUP BY group { , group } ] [ HAVING expr ]
//   apply     := ( CROSS | OUTER ) APPLY name ( expr ) [ AS ] alias
//   join      := [ INNER | LEFT [ OUTER ] ] JOIN name [ [ AS ] alias ] [ TIMESTAMP BY expr ]
//                ON expr
//   item      := * | path . * | expr [ AS alias ]
//   group     := expr [ OVER ( PARTITION BY expr ) ]
//   match_recognize: see ParseMatchRecognize
//   name      := identifier | [ text ]
#include "base/strings.h"
#include "query/query_error.h"
#include "query/value.h"
#include "stream/plan.h"

namespace orrery::stream::internal {

using query::Errc;
using query::ExprKind;
using query::ExprPtr;
using query::QueryError;
using query::TokenCursor;
using query::TokenKind;

const query::ExprOptions& StreamExprOptions(const StreamLimits& limits) {
  thread_local query::ExprOptions o;
  o.reserved = {"SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "INTO", "AS", "WITH", "UNION"};
  o.sql_forms = true;
  o.limits = limits.text;
  o.lex.semicolons = true;
  o.lex.sql_comments = true;
  o.lex.bitwise_operators = true;
  o.lex.question_marks = true;
  return o;
}

namespace {

// Before adding an item to a list of `size`.
void CheckListLength(const TokenCursor& in, size_t size, const StreamLimits& limits) {
  if (size >= limits.text.max_list) {
    throw QueryError(
        Errc::kLimitExceeded, in.Peek().pos,
        "list is too long (the limit is " + std::to_string(limits.text.max_list) + " items)");
  }
}

bool AtClauseWord(const TokenCursor& in) {
  for (std::string_view w :
       {"SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "INTO", "AS", "WITH", "UNION"}) {
    if (in.AtKeyword(w)) return true;
  }
  return false;
}

// identifier or [any text]
std::string ParseName(TokenCursor& in, std::string_view what) {
  if (in.At(TokenKind::kLBracket)) {  // (most are one token already: QuoteBracketedNames)
    const char* begin = in.Next().text.data() + 1;
    while (!in.At(TokenKind::kRBracket)) {
      if (in.AtEnd()) in.Fail("']'");
      in.Next();
    }
    const char* end = in.Next().text.data();
    return std::string(strings::Trim(std::string_view(begin, static_cast<size_t>(end - begin))));
  }
  if (in.At(TokenKind::kQuotedIdentifier)) return in.Next().value;
  if (!in.At(TokenKind::kIdentifier) || AtClauseWord(in)) in.Fail(what);
  return std::string(in.Next().text);
}

std::string ParseAlias(TokenCursor& in) {
  if (in.At(TokenKind::kString)) return in.Next().value;
  return ParseName(in, "a name after AS");
}

// At `a.b.*`? Returns the number of tokens before the `*`, or 0.
size_t PathStarLength(const TokenCursor& in) {
  if (!in.At(TokenKind::kIdentifier)) return 0;
  size_t i = 1;
  while (in.At(TokenKind::kDot, i)) {
    if (in.At(TokenKind::kStar, i + 1)) return i + 1;
    if (!in.At(TokenKind::kIdentifier, i + 1)) return 0;
    i += 2;
  }
  return 0;
}

bool IsWindowName(std::string_view n) {
  for (std::string_view w :
       {"TUMBLINGWINDOW", "TUMBLING", "HOPPINGWINDOW", "HOPPING", "SLIDINGWINDOW", "SLIDING",
        "SESSIONWINDOW", "SESSION", "SNAPSHOTWINDOW", "SNAPSHOT"}) {
    if (strings::IEquals(n, w)) return true;
  }
  return false;
}

// An alias without AS: an identifier that does not start the next clause.
bool AtBareAlias(const TokenCursor& in) {
  if (!in.At(TokenKind::kIdentifier) || AtClauseWord(in)) return false;
  for (std::string_view w : {"TIMESTAMP", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS",
                             "OUTER", "PARTITION", "ON", "MATCH_RECOGNIZE"}) {
    if (in.AtKeyword(w)) return false;
  }
  return true;
}

ExprPtr NewExpr(ExprKind kind, query::Position pos) {
  auto e = std::make_unique<query::Expr>();
  e->kind = kind;
  e->pos = pos;
  return e;
}

// TIMESTAMP BY expr [OVER key, …]: the keys go to `over` (null: OVER is refused there).
query::ExprPtr ParseTimestampBy(TokenCursor& in, query::ExpressionParser& parser,
                                const StreamLimits& limits, std::vector<ExprPtr>* over) {
  if (!in.TryKeyword("TIMESTAMP")) return nullptr;
  in.ExpectKeyword("BY");
  query::ExprPtr e = parser.Parse();
  if (in.AtKeyword("OVER")) {
    if (!over) {
      throw QueryError(Errc::kInvalidQuery, in.Peek().pos,
                       "TIMESTAMP BY … OVER (substreams) is not supported in a JOIN yet");
    }
    in.Next();
    while (true) {
      CheckListLength(in, over->size(), limits);
      over->push_back(parser.Parse());
      if (!in.Try(TokenKind::kComma)) break;
    }
  }
  return e;
}

// PARTITION BY expr (of the FROM's input): the SELECT runs per partition key.
void ParsePartitionBy(TokenCursor& in, query::ExpressionParser& parser, SelectStmt& s) {
  if (!in.AtKeyword("PARTITION")) return;
  query::Position pos = in.Next().pos;
  if (s.partition_by) throw QueryError(Errc::kSyntax, pos, "PARTITION BY is given twice");
  in.ExpectKeyword("BY");
  s.partition_by = parser.Parse();
}

// PATTERN's regular expression (docs/stream.md):
//   alt  := seq { | seq }      seq := atom { atom }
//   atom := ( symbol | . | ( alt ) ) [ * | + | ? | {n} | {n,} | {n,m} | {,m} ]
class PatternParser {
 public:
  PatternParser(TokenCursor& in, const StreamLimits& limits) : in_(in), limits_(limits) {}

  PatternNode Alt(uint32_t depth) {
    if (depth > limits_.text.max_depth) {
      throw QueryError(Errc::kLimitExceeded, in_.Peek().pos,
                       "PATTERN is nested too deeply (the limit is " +
                           std::to_string(limits_.text.max_depth) + ")");
    }
    PatternNode alt;
    alt.kind = PatternNode::Kind::kAlt;
    alt.pos = in_.Peek().pos;
    while (true) {
      alt.children.push_back(Seq(depth));
      if (!in_.Try(TokenKind::kPipe)) break;
    }
    if (alt.children.size() == 1) return std::move(alt.children[0]);
    return alt;
  }

 private:
  PatternNode Seq(uint32_t depth) {
    PatternNode seq;
    seq.kind = PatternNode::Kind::kSeq;
    seq.pos = in_.Peek().pos;
    while (!in_.At(TokenKind::kRParen) && !in_.At(TokenKind::kPipe)) {
      if (in_.AtEnd() || in_.AtKeyword("DEFINE") || in_.AtKeyword("WITHIN")) {
        if (seq.children.empty()) in_.Fail("a pattern symbol");
        in_.Fail("')'");
      }
      CheckListLength(in_, seq.children.size(), limits_);
      seq.children.push_back(Atom(depth));
    }
    if (seq.children.empty()) in_.Fail("a pattern symbol");
    if (seq.children.size() == 1) return std::move(seq.children[0]);
    return seq;
  }

  uint32_t Count() {
    if (!in_.At(TokenKind::kNumber)) in_.Fail("a count");
    const query::Token& t = in_.Peek();
    std::optional<int64_t> v = query::ToInt64(t.number);
    if (!v || *v < 0 || *v > 1000) {
      throw QueryError(Errc::kInvalidQuery, t.pos,
                       "a pattern's repetition count must be an integer from 0 to 1000");
    }
    in_.Next();
    return static_cast<uint32_t>(*v);
  }

  PatternNode Atom(uint32_t depth) {
    PatternNode atom;
    atom.pos = in_.Peek().pos;
    if (in_.Try(TokenKind::kLParen)) {
      atom = Alt(depth + 1);
      in_.Expect(TokenKind::kRParen, "')'");
    } else if (in_.Try(TokenKind::kDot)) {
      atom.symbol = ".";
    } else if (in_.At(TokenKind::kIdentifier) || in_.At(TokenKind::kQuotedIdentifier)) {
      atom.symbol = ParseName(in_, "a pattern symbol");
    } else {
      in_.Fail("a pattern symbol, '.' or '('");
    }
    PatternNode rep;
    rep.kind = PatternNode::Kind::kRepeat;
    rep.pos = in_.Peek().pos;
    if (in_.Try(TokenKind::kStar)) {
      rep.min = 0;
      rep.max = PatternNode::kUnbounded;
    } else if (in_.Try(TokenKind::kPlus)) {
      rep.min = 1;
      rep.max = PatternNode::kUnbounded;
    } else if (in_.Try(TokenKind::kQuestion)) {
      rep.min = 0;
      rep.max = 1;
    } else if (in_.Try(TokenKind::kLBrace)) {
      rep.min = in_.At(TokenKind::kComma) ? 0 : Count();
      rep.max = rep.min;
      if (in_.Try(TokenKind::kComma)) {
        rep.max = in_.At(TokenKind::kRBrace) ? PatternNode::kUnbounded : Count();
      }
      in_.Expect(TokenKind::kRBrace, "'}'");
      if (rep.max < rep.min || rep.max == 0) {
        throw QueryError(Errc::kInvalidQuery, rep.pos,
                         "a pattern's repetition {n,m} needs 0 <= n <= m and m >= 1");
      }
    } else {
      return atom;
    }
    if (in_.At(TokenKind::kQuestion) || in_.At(TokenKind::kStar) || in_.At(TokenKind::kPlus) ||
        in_.At(TokenKind::kLBrace)) {
      throw QueryError(Errc::kInvalidQuery, in_.Peek().pos,
                       "Stream Analytics has only greedy quantifiers, one per atom (no +?, *?, "
                       "A+*): group the atom in parentheses to quantify it again");
    }
    rep.children.push_back(std::move(atom));
    return rep;
  }

  TokenCursor& in_;
  const StreamLimits& limits_;
};

// MATCH_RECOGNIZE ( [LIMIT DURATION (unit, n)] [PARTITION BY expr {, expr}]
//   MEASURES expr AS alias {, expr AS alias} [AFTER MATCH SKIP (TO NEXT ROW | PAST LAST ROW)]
//   PATTERN ( pattern ) [DEFINE symbol AS expr {, symbol AS expr}] ) [[AS] alias]
std::unique_ptr<MatchClause> ParseMatchRecognize(TokenCursor& in, query::ExpressionParser& parser,
                                                 const StreamLimits& limits) {
  auto m = std::make_unique<MatchClause>();
  m->pos = in.Next().pos;  // MATCH_RECOGNIZE
  in.Expect(TokenKind::kLParen, "'(' after MATCH_RECOGNIZE");
  auto within = [&] {
    if (in.AtKeyword("WITHIN")) {
      throw QueryError(Errc::kInvalidQuery, in.Peek().pos,
                       "Stream Analytics bounds a match in time with LIMIT DURATION (unit, n), "
                       "the first clause of MATCH_RECOGNIZE, not WITHIN");
    }
  };
  within();
  if (in.TryKeyword("LIMIT")) {
    in.ExpectKeyword("DURATION");
    in.Expect(TokenKind::kLParen, "'('");
    m->duration_unit = parser.Parse();
    in.Expect(TokenKind::kComma, "','");
    m->duration_n = parser.Parse();
    in.Expect(TokenKind::kRParen, "')'");
  }
  if (in.TryKeyword("PARTITION")) {
    in.ExpectKeyword("BY");
    while (true) {
      CheckListLength(in, m->partition_by.size(), limits);
      m->partition_by.push_back(parser.Parse());
      if (!in.Try(TokenKind::kComma)) break;
    }
  }
  if (!in.AtKeyword("MEASURES")) {
    in.Fail(m->duration_unit || !m->partition_by.empty()
                ? "MEASURES"
                : "LIMIT DURATION, PARTITION BY or MEASURES");
  }
  in.Next();
  while (true) {
    CheckListLength(in, m->measures.size(), limits);
    MatchMeasure measure;
    measure.pos = in.Peek().pos;
    measure.expr = parser.Parse();
    if (!in.AtKeyword("AS")) in.Fail("AS and a name for the measure");
    in.Next();
    measure.alias = ParseAlias(in);
    m->measures.push_back(std::move(measure));
    if (!in.Try(TokenKind::kComma)) break;
  }
  if (in.TryKeyword("AFTER")) {
    in.ExpectKeyword("MATCH");
    in.ExpectKeyword("SKIP");
    if (in.TryKeyword("PAST")) {
      in.ExpectKeyword("LAST");
      in.ExpectKeyword("ROW");
      m->skip_past_last = true;
    } else {
      if (!in.AtKeyword("TO")) in.Fail("TO NEXT ROW or PAST LAST ROW");
      in.Next();
      if (in.AtKeyword("FIRST") || in.AtKeyword("LAST")) {
        throw QueryError(Errc::kInvalidQuery, in.Peek().pos,
                         "AFTER MATCH SKIP TO FIRST/LAST symbol is not supported (TO NEXT ROW or "
                         "PAST LAST ROW)");
      }
      in.ExpectKeyword("NEXT");
      in.ExpectKeyword("ROW");
    }
  }
  if (!in.AtKeyword("PATTERN")) in.Fail("',', AFTER MATCH SKIP or PATTERN");
  in.Next();
  in.Expect(TokenKind::kLParen, "'(' after PATTERN");
  m->pattern = PatternParser(in, limits).Alt(1);
  in.Expect(TokenKind::kRParen, "')'");
  within();
  if (in.TryKeyword("DEFINE")) {
    while (true) {
      CheckListLength(in, m->defines.size(), limits);
      MatchDefine d;
      d.pos = in.Peek().pos;
      d.symbol = ParseName(in, "a pattern symbol to define");
      in.ExpectKeyword("AS");
      d.condition = parser.Parse();
      m->defines.push_back(std::move(d));
      if (!in.Try(TokenKind::kComma)) break;
    }
  }
  within();
  in.Expect(TokenKind::kRParen, m->defines.empty() ? "DEFINE or ')'" : "',' or ')'");
  if (in.TryKeyword("AS")) {
    m->alias = ParseName(in, "an alias after AS");
  } else if (AtBareAlias(in)) {
    m->alias = std::string(in.Next().text);
  }
  return m;
}

SelectStmt ParseSelect(TokenCursor& in, query::ExpressionParser& parser,
                       const StreamLimits& limits) {
  SelectStmt s;
  s.pos = in.ExpectKeyword("SELECT").pos;
  // ASA's SELECT has neither (its grammar: SELECT <select_list>); say what does the job.
  if (in.AtKeyword("DISTINCT")) {
    throw QueryError(Errc::kInvalidQuery, in.Peek().pos,
                     "Stream Analytics has no SELECT DISTINCT: group by the columns with a window "
                     "(GROUP BY x, TumblingWindow(…)), or count them with COUNT(DISTINCT x)");
  }
  if (in.AtKeyword("TOP") && !in.At(TokenKind::kComma, 1) && !in.AtKeyword("FROM", 1) &&
      !in.AtKeyword("INTO", 1) && !in.AtKeyword("AS", 1)) {
    throw QueryError(Errc::kInvalidQuery, in.Peek().pos,
                     "Stream Analytics has no SELECT TOP: take the first rows of a window with "
                     "CollectTop(n) OVER (ORDER BY …) or TopOne() OVER (ORDER BY …)");
  }
  while (true) {
    CheckListLength(in, s.items.size(), limits);
    SelectItem item;
    item.pos = in.Peek().pos;
    if (in.At(TokenKind::kStar)) {
      in.Next();
      item.star = true;
    } else if (size_t n = PathStarLength(in)) {
      ExprPtr path = NewExpr(ExprKind::kName, in.Peek().pos);
      path->name = std::string(in.Next().text);
      for (size_t i = 1; i + 1 < n; i += 2) {
        query::Position dot = in.Next().pos;
        ExprPtr m = NewExpr(ExprKind::kMember, dot);
        m->name = std::string(in.Next().text);
        m->depth = static_cast<uint16_t>(path->depth + 1);
        m->children.push_back(std::move(path));
        path = std::move(m);
      }
      in.Next();  // '.'
      in.Next();  // '*'
      item.star_of = std::move(path);
    } else {
      // T-SQL's `column_alias = expression`, which ASA's SELECT documents too.
      if ((in.At(TokenKind::kIdentifier) && !AtClauseWord(in)) ||
          in.At(TokenKind::kQuotedIdentifier)) {
        if (in.At(TokenKind::kEq, 1)) {
          item.alias = ParseName(in, "a column name");
          in.Next();  // '='
        }
      }
      item.expr = parser.Parse();
      if (in.AtKeyword("OVER")) {
        throw QueryError(Errc::kSyntax, in.Peek().pos,
                         "OVER must follow a function call and open with '('");
      }
      if (in.AtKeyword("WITHIN")) {
        throw QueryError(Errc::kSyntax, in.Peek().pos,
                         "Stream Analytics writes PERCENTILE_CONT(p) OVER (ORDER BY x), not "
                         "WITHIN GROUP");
      }
      if (in.AtKeyword("AS") && item.alias) {
        throw QueryError(Errc::kSyntax, in.Peek().pos,
                         "the column is named twice ('" + *item.alias + " = …' and AS)");
      }
      if (in.TryKeyword("AS")) item.alias = ParseAlias(in);
    }
    s.items.push_back(std::move(item));
    if (!in.Try(TokenKind::kComma)) break;
  }
  if (in.AtKeyword("INTO")) {
    s.into_pos = in.Next().pos;
    s.into = ParseName(in, "an output name after INTO");
  }
  if (!in.AtKeyword("FROM")) in.Fail(s.into ? "FROM" : "',', INTO or FROM");
  in.Next();
  s.from_pos = in.Peek().pos;
  s.from = ParseName(in, "an input or step name after FROM");
  if (in.TryKeyword("AS")) {
    s.alias = ParseName(in, "an alias after AS");
  } else if (AtBareAlias(in)) {
    s.alias = std::string(in.Next().text);
  }
  // APPLYs may come before or after TIMESTAMP BY (ASA writes the input's TIMESTAMP BY first).
  auto applies = [&] {
    while ((in.AtKeyword("CROSS") || in.AtKeyword("OUTER")) && in.AtKeyword("APPLY", 1)) {
      if (s.applies.size() >= limits.text.max_depth) {
        throw QueryError(
            Errc::kLimitExceeded, in.Peek().pos,
            "too many APPLY clauses (the limit is " + std::to_string(limits.text.max_depth) + ")");
      }
      ApplyItem a;
      a.pos = in.Peek().pos;
      a.outer = in.Next().IsKeyword("OUTER");
      in.Next();  // APPLY
      if (!in.At(TokenKind::kIdentifier) || !in.At(TokenKind::kLParen, 1)) {
        in.Fail("GetArrayElements(…) or GetRecordProperties(…) after APPLY");
      }
      a.function = std::string(in.Next().text);
      in.Next();  // '('
      a.arg = parser.Parse();
      in.Expect(TokenKind::kRParen, "')'");
      in.TryKeyword("AS");
      a.alias = ParseName(in, "a name for the APPLY's rows");
      s.applies.push_back(std::move(a));
    }
  };
  applies();
  ParsePartitionBy(in, parser, s);
  s.timestamp_by = ParseTimestampBy(in, parser, limits, &s.timestamp_over);
  if (s.timestamp_by) applies();
  ParsePartitionBy(in, parser, s);
  if (in.AtKeyword("MATCH_RECOGNIZE")) s.match = ParseMatchRecognize(in, parser, limits);
  while (true) {
    // An APPLY after a JOIN parses (the binder says what it supports).
    if ((in.AtKeyword("CROSS") || in.AtKeyword("OUTER")) && in.AtKeyword("APPLY", 1)) {
      applies();
      continue;
    }
    if (in.AtKeyword("RIGHT") || in.AtKeyword("FULL") || in.AtKeyword("CROSS") ||
        in.AtKeyword("OUTER")) {
      throw QueryError(Errc::kInvalidQuery, in.Peek().pos,
                       "Stream Analytics joins are INNER or LEFT OUTER");
    }
    JoinClause j;
    j.pos = in.Peek().pos;
    bool typed = true;
    if (in.TryKeyword("LEFT")) {
      j.left_outer = true;
      in.TryKeyword("OUTER");
    } else if (!in.TryKeyword("INNER")) {
      typed = false;
    }
    if (!typed && !in.AtKeyword("JOIN")) break;
    in.ExpectKeyword("JOIN");
    if (s.joins.size() + 1 >= kMaxJoinSources) {
      throw QueryError(Errc::kLimitExceeded, j.pos,
                       "too many JOINs in one SELECT (the limit is " +
                           std::to_string(kMaxJoinSources - 1) + ")");
    }
    j.from_pos = in.Peek().pos;
    j.from = ParseName(in, "an input or step name after JOIN");
    if (in.TryKeyword("AS")) {
      j.alias = ParseName(in, "an alias after AS");
    } else if (AtBareAlias(in)) {
      j.alias = std::string(in.Next().text);
    }
    j.timestamp_by = ParseTimestampBy(in, parser, limits, nullptr);
    j.on_pos = in.ExpectKeyword("ON").pos;
    j.on = parser.Parse();
    s.joins.push_back(std::move(j));
  }
  ParsePartitionBy(in, parser, s);
  if (in.TryKeyword("WHERE")) s.where = parser.Parse();
  if (in.TryKeyword("GROUP")) {
    in.ExpectKeyword("BY");
    while (true) {
      CheckListLength(in, s.group_by.size(), limits);
      GroupItem g;
      g.expr = parser.Parse();
      // The expression parser reads `SessionWindow(…) OVER (PARTITION BY k)` as
      // $OVER(SessionWindow(…), $PARTITION_BY(k)); the window's partition is taken back out.
      if (g.expr->kind == ExprKind::kCall && g.expr->name == "$OVER" &&
          IsWindowName(g.expr->children[0]->name)) {
        ExprPtr over = std::move(g.expr);
        g.expr = std::move(over->children[0]);
        for (size_t i = 1; i < over->children.size(); ++i) {
          query::Expr& clause = *over->children[i];
          if (clause.name != "$PARTITION_BY" || clause.children.size() != 1) {
            throw QueryError(Errc::kInvalidQuery, clause.pos,
                             "a window's OVER clause takes one PARTITION BY expression only");
          }
          g.partition_by = std::move(clause.children[0]);
        }
      } else if (in.TryKeyword("OVER")) {
        in.Expect(TokenKind::kLParen, "'('");
        in.ExpectKeyword("PARTITION");
        in.ExpectKeyword("BY");
        g.partition_by = parser.Parse();
        in.Expect(TokenKind::kRParen, "')'");
      }
      s.group_by.push_back(std::move(g));
      if (!in.Try(TokenKind::kComma)) break;
    }
  }
  if (in.TryKeyword("HAVING")) s.having = parser.Parse();
  return s;
}

Statement ParseStatement(TokenCursor& in, query::ExpressionParser& parser,
                         const StreamLimits& limits, uint32_t& count) {
  Statement st;
  while (true) {
    if (++count > limits.max_statements) {
      throw QueryError(Errc::kLimitExceeded, in.Peek().pos,
                       "query has too many statements (the limit is " +
                           std::to_string(limits.max_statements) + ")");
    }
    st.parts.push_back(ParseSelect(in, parser, limits));
    if (!in.TryKeyword("UNION")) break;
    in.TryKeyword("ALL");
  }
  return st;
}

// Ends an operand: a `[` after it indexes (`a[0]`, `f(x)['k']`) rather than quoting a name.
bool EndsOperand(const query::Token& t) {
  switch (t.kind) {
    case TokenKind::kQuotedIdentifier:
    case TokenKind::kString:
    case TokenKind::kNumber:
    case TokenKind::kRParen:
    case TokenKind::kRBracket:
      return true;
    case TokenKind::kIdentifier:
      for (std::string_view w :
           {"SELECT", "FROM", "WHERE", "BY",   "HAVING", "INTO",  "AS",   "WITH",    "UNION",
            "ALL",    "ON",   "JOIN",  "AND",  "OR",     "NOT",   "IN",   "BETWEEN", "LIKE",
            "IS",     "CASE", "WHEN",  "THEN", "ELSE",   "APPLY", "OVER", "DISTINCT"}) {
        if (t.IsKeyword(w)) return false;
      }
      return true;
    default:
      return false;
  }
}

}  // namespace

void QuoteBracketedNames(std::vector<query::Token>& tokens) {
  std::vector<query::Token> out;
  out.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    bool operand = out.empty() || !EndsOperand(out.back());
    size_t close = i + 1;
    bool simple = operand && tokens[i].kind == TokenKind::kLBracket;
    for (; simple && close < tokens.size(); ++close) {
      TokenKind k = tokens[close].kind;
      if (k == TokenKind::kRBracket) break;
      if (k == TokenKind::kLBracket || k == TokenKind::kComma || k == TokenKind::kEnd) {
        simple = false;
      }
    }
    // `[name]`, `[my field]`, `[a-b]`: not `[]`, `[1]` or `['x']` (arrays of one literal).
    if (simple && close < tokens.size() && close > i + 1 &&
        !(close == i + 2 &&
          (tokens[i + 1].kind == TokenKind::kNumber || tokens[i + 1].kind == TokenKind::kString))) {
      const char* begin = tokens[i].text.data();
      const char* end = tokens[close].text.data() + tokens[close].text.size();
      query::Token t;
      t.kind = TokenKind::kQuotedIdentifier;
      t.pos = tokens[i].pos;
      t.text = std::string_view(begin, static_cast<size_t>(end - begin));
      t.value = std::string(
          strings::Trim(std::string_view(begin + 1, static_cast<size_t>(end - begin) - 2)));
      out.push_back(std::move(t));
      i = close;
      continue;
    }
    out.push_back(std::move(tokens[i]));
  }
  tokens = std::move(out);
}

namespace {

// CREATE TABLE name ( column type { , column type } ), type = identifier [ ( max | n ) ].
TableDef ParseCreateTable(TokenCursor& in, const StreamLimits& limits) {
  TableDef t;
  t.pos = in.Next().pos;  // CREATE
  in.ExpectKeyword("TABLE");
  t.name = ParseName(in, "an input name after CREATE TABLE");
  in.Expect(TokenKind::kLParen, "'('");
  while (true) {
    CheckListLength(in, t.columns.size(), limits);
    TableColumn c;
    c.pos = in.Peek().pos;
    c.name = ParseName(in, "a column name");
    c.type_pos = in.Peek().pos;
    if (!in.At(TokenKind::kIdentifier)) in.Fail("a type (bigint, float, nvarchar(max), …)");
    c.type = strings::ToLower(in.Next().text);
    if (in.Try(TokenKind::kLParen)) {
      if (!in.At(TokenKind::kIdentifier) && !in.At(TokenKind::kNumber)) in.Fail("max");
      c.type += "(" + strings::ToLower(in.Next().text) + ")";
      in.Expect(TokenKind::kRParen, "')'");
    }
    t.columns.push_back(std::move(c));
    if (!in.Try(TokenKind::kComma)) break;
  }
  in.Expect(TokenKind::kRParen, "',' or ')'");
  return t;
}

}  // namespace

ParsedQuery ParseStatements(TokenCursor& in, query::ExpressionParser& parser,
                            const StreamLimits& limits) {
  ParsedQuery q;
  uint32_t count = 0;
  while (in.AtKeyword("CREATE")) {
    if (++count > limits.max_statements) {
      throw QueryError(Errc::kLimitExceeded, in.Peek().pos,
                       "query has too many statements (the limit is " +
                           std::to_string(limits.max_statements) + ")");
    }
    q.tables.push_back(ParseCreateTable(in, limits));
    while (in.Try(TokenKind::kSemicolon)) {
    }
  }
  if (in.TryKeyword("WITH")) {
    while (true) {
      Step step;
      step.pos = in.Peek().pos;
      step.name = ParseName(in, "a step name after WITH");
      in.ExpectKeyword("AS");
      in.Expect(TokenKind::kLParen, "'('");
      step.body = ParseStatement(in, parser, limits, count);
      in.Expect(TokenKind::kRParen, "')'");
      q.steps.push_back(std::move(step));
      if (!in.Try(TokenKind::kComma)) break;
    }
  }
  while (true) {
    if (in.AtKeyword("CREATE")) {
      throw QueryError(Errc::kSyntax, in.Peek().pos,
                       "CREATE TABLE comes before the query's WITH and SELECT statements");
    }
    if (!in.AtKeyword("SELECT"))
      in.Fail(q.statements.empty() ? "SELECT" : "SELECT or end of input");
    q.statements.push_back(ParseStatement(in, parser, limits, count));
    // ';' separates statements; a statement may also simply follow the previous one.
    while (in.Try(TokenKind::kSemicolon)) {
    }
    if (in.AtEnd()) break;
  }
  return q;
}

}  // namespace orrery::stream::internal
