// The expression parser shared by the SQL-like dialects, and the token cursor that the
// dialects' statement parsers (SELECT … FROM …) drive it with.
//
// Grammar (lowest precedence first; binary operators associate to the left):
//
//   expr       := or
//   or         := and { OR and }
//   and        := not { AND not }
//   not        := NOT not | comparison
//   comparison := additive { ( = | != | <> | < | <= | > | >= ) additive
//                          | [NOT] IN list | NIN list
//                          | [NOT] BETWEEN additive AND additive }
//   list       := '(' [ expr { , expr } ] ')' | '[' [ expr { , expr } ] ']'
//   additive   := multiplicative { ( + | - | & | '|' | ^ ) multiplicative }   (& | ^: sql_forms)
//   multiplicative := unary { ( * | / | % ) unary }
//   unary      := ( - | + | ~ ) unary | postfix                              (~: sql_forms)
//   postfix    := primary { '.' member | '[' expr ']' }
//   member     := identifier | keyword | [[quoted name]]
//   primary    := number | string | TRUE | FALSE | NULL | UNDEFINED
//               | identifier '(' [ '*' | expr { , expr } ] ')'      (a call)
//               | identifier | [[quoted name]]                      (a name)
//               | '(' expr ')' | '[' [ expr { , expr } ] ']'
//               | '{' [ key ':' expr { , key ':' expr } ] '}'        (key: identifier or string)
//
// A dialect passes its reserved words (clause keywords such as SELECT, FROM, WHERE): they end
// an expression and cannot be names, except after a '.' where any word is a member name.
// NIN (IoT Hub's "not in") is an operator only when the dialect asks for it.
//
// Errors are thrown as QueryError (query_error.h) and say what was expected where; only the
// entry point ParseExpression() returns them as Result.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "query/ast.h"
#include "query/lexer.h"
#include "query/limits.h"

namespace orrery::query {

struct ExprOptions {
  std::vector<std::string_view> reserved;  // upper case
  bool nin_operator = false;
  // The T-SQL forms of the Stream Analytics dialect, each desugared into a call so that the
  // binder and evaluator need nothing new (the dialect registers the functions):
  //   CASE WHEN c THEN r … [ELSE e] END      → $CASE(c1, r1, …, e)   (no ELSE: e is NULL)
  //   CASE x WHEN v THEN r … [ELSE e] END    → $CASE_VALUE(x, v1, r1, …, e)
  //   CAST(x AS type), TRY_CAST(x AS type)   → CAST(x, 'type'), TRY_CAST(x, 'type'); the type
  //                                            is lower case: bigint, nvarchar(max), …
  //   a [NOT] LIKE p                         → [NOT] $LIKE(a, p)
  //   a IS [NOT] NULL                        → [NOT] $IS_NULL(a)
  //   f(DISTINCT x)                          → f(x) with Expr::distinct
  //   a.b(args)                              → a call named "a.b" (System.Timestamp())
  //   f(args) OVER ( clause… )               → $OVER(f(args), clause…), each clause a call:
  //       PARTITION BY e1, e2…                 → $PARTITION_BY(e1, e2…)
  //       ORDER BY e1 [ASC|DESC], …            → $ORDER_BY(e1, 'ASC'|'DESC', …)
  //       LIMIT DURATION(unit, n)              → $LIMIT_DURATION(unit, n)
  //       WHEN c                               → $WHEN(c)
  //     (Stream Analytics' analytic functions and aggregates; the dialect's binder checks
  //     which clauses a function takes; each clause at most once, in any order)
  //   a & b, a | b, a ^ b, ~a                → $BITAND(a, b), $BITOR, $BITXOR, $BITNOT(a) (the
  //                                            lexer must make the tokens: bitwise_operators)
  // CASE WHEN THEN ELSE END LIKE IS DISTINCT are then reserved.
  bool sql_forms = false;
  Limits limits;
  LexOptions lex;  // used by ParseExpression (statement parsers lex for themselves)
};

// "'WHERE'", "end of input", "string 'abc'": how an error names the token it found.
std::string Describe(const Token& t);

// Walks a token vector. Throws QueryError(kSyntax) from the Expect… and Fail members.
class TokenCursor {
 public:
  // REQUIRES: `tokens` ends with a kEnd token (as Lex returns them).
  explicit TokenCursor(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  const Token& Peek(size_t ahead = 0) const;
  const Token& Next();
  bool AtEnd() const { return Peek().kind == TokenKind::kEnd; }
  bool At(TokenKind k, size_t ahead = 0) const { return Peek(ahead).kind == k; }
  bool AtKeyword(std::string_view upper, size_t ahead = 0) const {
    return Peek(ahead).IsKeyword(upper);
  }
  bool TryKeyword(std::string_view upper);
  bool Try(TokenKind k);
  const Token& ExpectKeyword(std::string_view upper);
  // `what` names the expectation in the error: "expected ')', found 'FROM'".
  const Token& Expect(TokenKind k, std::string_view what = {});
  // "expected <what>, found <the next token>" at the next token.
  [[noreturn]] void Fail(std::string_view what) const;

 private:
  std::vector<Token> tokens_;
  size_t i_ = 0;
};

class ExpressionParser {
 public:
  // `in` and `options` must outlive the parser. The node count accumulates over every
  // expression this parser parses (one statement).
  ExpressionParser(TokenCursor& in, const ExprOptions& options) : in_(in), options_(options) {}

  // One expression from the cursor's position; stops before the first token that cannot
  // continue it. Throws QueryError.
  ExprPtr Parse();

  bool IsReserved(const Token& t) const;

 private:
  ExprPtr ParseBinary(int min_prec);
  ExprPtr ParseUnary();
  ExprPtr ParsePostfix(ExprPtr base);
  ExprPtr ParsePrimary();
  void ParseList(TokenKind close, std::vector<ExprPtr>& into);
  ExprPtr ParseObject(Position pos);
  ExprPtr ParseCase(Position pos);
  ExprPtr ParseCast(Position pos, std::string name);
  ExprPtr ParseOver(ExprPtr call);
  ExprPtr Wrap(ExprKind kind, Position pos, ExprPtr child);
  ExprPtr Make(ExprKind kind, Position pos, std::vector<ExprPtr> children = {});
  void Enter();
  void Leave() { --nesting_; }

  TokenCursor& in_;
  const ExprOptions& options_;
  uint32_t nesting_ = 0;
  uint32_t nodes_ = 0;
};

// Parses all of `text` as one expression (nothing may follow it).
Result<ExprPtr> ParseExpression(std::string_view text, const ExprOptions& options);

}  // namespace orrery::query
