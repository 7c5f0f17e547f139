// The lexer shared by the SQL-like dialects.
//
// Tokens: identifiers (`deviceId`, `$version`, `_x1`; letters, digits, `_`, `$` and any
// non-ASCII UTF-8, not starting with a digit), the IoT Hub quoted name `[[any text]]`,
// strings in single or double quotes with the escapes \' \" \\ \/ \b \f \n \r \t \uXXXX
// (surrogate pairs combine), numbers (`42`, `1.5`, `2e-3`, `0x1F`; an integer that does not
// fit int64/uint64 becomes a double), the operators `= != <> < <= > >= + - * / %` and the
// punctuation `( ) [ ] { } , . :` (and, when a dialect asks, `;` and the bitwise `& | ^ ~`).
// Whitespace separates tokens.
//
// Keywords (SELECT, AND, IN, …) are identifiers here: which words are reserved is the
// dialect's business, and the parser compares them case-insensitively.
//
// Two spots depend on the previous token, both after a `.`: a name may start with a digit
// there (`tags.2ndFloor`), and `[[…]]` is a quoted name there (`tags.[[group]]`) while
// elsewhere `[[1,2]]` is a nested array. `[[` at the very start of a path is therefore not
// supported by default; IoT Hub only documents it after a dot. LexOptions lets a dialect
// quote names everywhere and join names with hyphens (routing conditions need both).
//
// Every token carries its position (byte offset, 1-based line and column in code points)
// for error messages. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "base/error.h"
#include "query/limits.h"

namespace orrery::query {

struct Position {
  uint32_t offset = 0;  // bytes from the start of the text
  uint32_t line = 1;
  uint32_t column = 1;  // code points from the start of the line, 1-based
};

enum class TokenKind : uint8_t {
  kEnd,               // end of input; always the last token
  kIdentifier,        // text is the name as written
  kQuotedIdentifier,  // [[name]]: `value` holds the name
  kString,            // `value` holds the decoded string
  kNumber,            // `number` holds int64, uint64 or double
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kLBrace,
  kRBrace,
  kComma,
  kDot,
  kColon,
  kSemicolon,  // only with LexOptions::semicolons
  kStar,
  kPlus,
  kMinus,
  kSlash,
  kPercent,
  kEq,  // =
  kNe,  // != or <>
  kLt,
  kLe,
  kGt,
  kGe,
  kAmpersand,  // &  (the bitwise operators: only with LexOptions::bitwise_operators)
  kPipe,       // |
  kCaret,      // ^
  kTilde,      // ~
  kQuestion,   // ?  (only with LexOptions::question_marks)
};

// "identifier", "string", "'('", …
std::string_view TokenKindName(TokenKind k);

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string_view text;  // as written, quotes included; views the lexed text
  Position pos;
  std::string value;          // kString and kQuotedIdentifier: the decoded text
  boost::json::value number;  // kNumber

  // An identifier equal to `word` ignoring ASCII case. REQUIRES: `word` is upper case.
  bool IsKeyword(std::string_view word) const;
};

// A dialect's choices about names; both off by default (the IoT Hub query dialect).
struct LexOptions {
  // A `-` between two name characters belongs to the name: `iothub-message-schema`,
  // `$dt-subject`, `tags.floor-2`. Subtraction then needs a space before the `-` or after
  // it (`a - b`, `a -1`).
  bool hyphens_in_names = false;
  // `[[any text]]` is a quoted name everywhere, so a path may start with one
  // (`[[my#prop]] = 'x'`); a nested array literal then needs a space (`[ [1, 2]]`).
  bool quoted_names_anywhere = false;
  // `;` is a token (statement separator), and `-- to end of line` and `/* … */` are comments
  // (Stream Analytics queries).
  bool semicolons = false;
  bool sql_comments = false;
  // `&`, `|`, `^` and `~` are tokens (Stream Analytics' bitwise operators); elsewhere they are
  // unexpected characters.
  bool bitwise_operators = false;
  // An integer may be followed by `..` (two '.' tokens): the hop ranges of ADT's MATCH,
  // `[*1..3]`. Otherwise a number running into a '.' is an error.
  bool range_dots = false;
  // `?` is a token (the quantifier of Stream Analytics' MATCH_RECOGNIZE patterns).
  bool question_marks = false;
};

// Lexes all of `text` (which the tokens view: it must outlive them). Errors are
// Errc::kSyntax with a position ("line 1, column 9: unterminated string"), also for text
// that is not valid UTF-8, or Errc::kLimitExceeded for text longer than limits.max_length.
Result<std::vector<Token>> Lex(std::string_view text, const Limits& limits = {},
                               const LexOptions& options = {});

}  // namespace orrery::query
