#include "query/lexer.h"

#include <charconv>
#include <cstring>
#include <iterator>

#include "base/strings.h"
#include "query/query_error.h"

namespace orrery::query {

std::string_view TokenKindName(TokenKind k) {
  switch (k) {
    case TokenKind::kEnd:
      return "end of input";
    case TokenKind::kIdentifier:
      return "identifier";
    case TokenKind::kQuotedIdentifier:
      return "quoted name";
    case TokenKind::kString:
      return "string";
    case TokenKind::kNumber:
      return "number";
    case TokenKind::kLParen:
      return "'('";
    case TokenKind::kRParen:
      return "')'";
    case TokenKind::kLBracket:
      return "'['";
    case TokenKind::kRBracket:
      return "']'";
    case TokenKind::kLBrace:
      return "'{'";
    case TokenKind::kRBrace:
      return "'}'";
    case TokenKind::kComma:
      return "','";
    case TokenKind::kDot:
      return "'.'";
    case TokenKind::kColon:
      return "':'";
    case TokenKind::kSemicolon:
      return "';'";
    case TokenKind::kStar:
      return "'*'";
    case TokenKind::kPlus:
      return "'+'";
    case TokenKind::kMinus:
      return "'-'";
    case TokenKind::kSlash:
      return "'/'";
    case TokenKind::kPercent:
      return "'%'";
    case TokenKind::kEq:
      return "'='";
    case TokenKind::kNe:
      return "'!='";
    case TokenKind::kLt:
      return "'<'";
    case TokenKind::kLe:
      return "'<='";
    case TokenKind::kGt:
      return "'>'";
    case TokenKind::kGe:
      return "'>='";
    case TokenKind::kAmpersand:
      return "'&'";
    case TokenKind::kPipe:
      return "'|'";
    case TokenKind::kCaret:
      return "'^'";
    case TokenKind::kTilde:
      return "'~'";
    case TokenKind::kQuestion:
      return "'?'";
  }
  return "token";
}

bool Token::IsKeyword(std::string_view word) const {
  return kind == TokenKind::kIdentifier && strings::IEquals(text, word);
}

Error QueryError::ToError() const {
  if (!has_pos_) return Error(code_, message_);
  return Error(code_, "line " + std::to_string(pos_.line) + ", column " +
                          std::to_string(pos_.column) + ": " + message_);
}

namespace {

bool IsIdentStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}
bool IsDigit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool IsIdentPart(unsigned char c) {
  return IsIdentStart(c) || IsDigit(c);
}
int HexDigit(unsigned char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Lexer {
 public:
  Lexer(std::string_view text, const LexOptions& options) : s_(text), options_(options) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      SkipSpace();
      Token t;
      t.pos = Here();
      size_t start = i_;
      if (i_ >= s_.size()) {
        out.push_back(std::move(t));
        return out;
      }
      bool after_dot = !out.empty() && out.back().kind == TokenKind::kDot;
      Scan(t, after_dot);
      t.text = s_.substr(start, i_ - start);
      out.push_back(std::move(t));
    }
  }

 private:
  Position Here() const { return {static_cast<uint32_t>(i_), line_, column_}; }

  // Advances over one byte, keeping line and column (columns count UTF-8 lead bytes).
  void Advance() {
    unsigned char c = static_cast<unsigned char>(s_[i_++]);
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column_;
    }
  }
  unsigned char At(size_t k) const { return k < s_.size() ? static_cast<unsigned char>(s_[k]) : 0; }
  unsigned char Cur() const { return At(i_); }

  void SkipSpace() {
    while (true) {
      while (i_ < s_.size() && (Cur() == ' ' || Cur() == '\t' || Cur() == '\n' || Cur() == '\r' ||
                                Cur() == '\f' || Cur() == '\v')) {
        Advance();
      }
      if (!options_.sql_comments) return;
      if (Cur() == '-' && At(i_ + 1) == '-') {
        while (i_ < s_.size() && Cur() != '\n')
          Advance();
      } else if (Cur() == '/' && At(i_ + 1) == '*') {
        Position start = Here();
        Advance();
        Advance();
        while (!(Cur() == '*' && At(i_ + 1) == '/')) {
          if (i_ >= s_.size()) Fail(start, "unterminated comment");
          Advance();
        }
        Advance();
        Advance();
      } else {
        return;
      }
    }
  }

  [[noreturn]] void Fail(Position at, std::string message) const {
    throw QueryError(Errc::kSyntax, at, std::move(message));
  }

  void Scan(Token& t, bool after_dot) {
    unsigned char c = Cur();
    if ((after_dot || options_.quoted_names_anywhere) && c == '[' && At(i_ + 1) == '[') {
      return ScanQuotedName(t);
    }
    if (IsIdentStart(c) || (after_dot && IsDigit(c))) {
      while (i_ < s_.size() && (IsIdentPart(Cur()) || (options_.hyphens_in_names && Cur() == '-' &&
                                                       IsIdentPart(At(i_ + 1))))) {
        Advance();
      }
      t.kind = TokenKind::kIdentifier;
      return;
    }
    if (IsDigit(c)) return ScanNumber(t);
    if (c == '\'' || c == '"') return ScanString(t);
    Advance();
    static constexpr std::string_view kSingle = "()[]{},.:*+-/%=";
    static constexpr TokenKind kSingleKinds[] = {
        TokenKind::kLParen, TokenKind::kRParen,  TokenKind::kLBracket, TokenKind::kRBracket,
        TokenKind::kLBrace, TokenKind::kRBrace,  TokenKind::kComma,    TokenKind::kDot,
        TokenKind::kColon,  TokenKind::kStar,    TokenKind::kPlus,     TokenKind::kMinus,
        TokenKind::kSlash,  TokenKind::kPercent, TokenKind::kEq};
    static_assert(std::size(kSingleKinds) == kSingle.size());
    if (size_t k = kSingle.find(static_cast<char>(c)); k != std::string_view::npos) {
      t.kind = kSingleKinds[k];
      return;
    }
    if (c == ';' && options_.semicolons) {
      t.kind = TokenKind::kSemicolon;
      return;
    }
    if (c == '?' && options_.question_marks) {
      t.kind = TokenKind::kQuestion;
      return;
    }
    if (options_.bitwise_operators) {
      static constexpr std::string_view kBitwise = "&|^~";
      static constexpr TokenKind kBitwiseKinds[] = {TokenKind::kAmpersand, TokenKind::kPipe,
                                                    TokenKind::kCaret, TokenKind::kTilde};
      if (size_t k = kBitwise.find(static_cast<char>(c)); k != std::string_view::npos) {
        t.kind = kBitwiseKinds[k];
        return;
      }
    }
    switch (c) {
      case '!':
        if (Cur() == '=') {
          Advance();
          t.kind = TokenKind::kNe;
          return;
        }
        Fail(t.pos, "unexpected character '!' (did you mean '!=' or NOT?)");
      case '<':
        if (Cur() == '=') {
          Advance();
          t.kind = TokenKind::kLe;
        } else if (Cur() == '>') {
          Advance();
          t.kind = TokenKind::kNe;
        } else {
          t.kind = TokenKind::kLt;
        }
        return;
      case '>':
        if (Cur() == '=') {
          Advance();
          t.kind = TokenKind::kGe;
        } else {
          t.kind = TokenKind::kGt;
        }
        return;
      default:
        break;
    }
    if (c >= 0x20 && c < 0x7F) {
      Fail(t.pos, std::string("unexpected character '") + static_cast<char>(c) + "'");
    }
    Fail(t.pos, "unexpected control character");
  }

  void ScanQuotedName(Token& t) {
    Advance();
    Advance();
    size_t start = i_;
    while (i_ < s_.size() && !(Cur() == ']' && At(i_ + 1) == ']'))
      Advance();
    if (i_ >= s_.size()) Fail(t.pos, "unterminated quoted name (missing ']]')");
    t.value.assign(s_.substr(start, i_ - start));
    if (t.value.empty()) Fail(t.pos, "empty quoted name '[[]]'");
    Advance();
    Advance();
    t.kind = TokenKind::kQuotedIdentifier;
  }

  void ScanNumber(Token& t) {
    size_t start = i_;
    t.kind = TokenKind::kNumber;
    if (Cur() == '0' && (At(i_ + 1) == 'x' || At(i_ + 1) == 'X')) {
      Advance();
      Advance();
      size_t digits = i_;
      while (HexDigit(Cur()) >= 0)
        Advance();
      if (i_ == digits) Fail(t.pos, "invalid number: '0x' without hexadecimal digits");
      CheckNumberEnd(t, start);
      uint64_t u = 0;
      auto [p, ec] = std::from_chars(s_.data() + digits, s_.data() + i_, u, 16);
      if (ec != std::errc() || p != s_.data() + i_) {
        Fail(t.pos,
             "hexadecimal number out of range '" + std::string(s_.substr(start, i_ - start)) + "'");
      }
      if (u <= static_cast<uint64_t>(INT64_MAX)) {
        t.number = static_cast<int64_t>(u);
      } else {
        t.number = u;
      }
      return;
    }
    bool integral = true;
    while (IsDigit(Cur()))
      Advance();
    if (Cur() == '.' && IsDigit(At(i_ + 1))) {
      integral = false;
      Advance();
      while (IsDigit(Cur()))
        Advance();
    }
    if (Cur() == 'e' || Cur() == 'E') {
      integral = false;
      Advance();
      if (Cur() == '+' || Cur() == '-') Advance();
      if (!IsDigit(Cur())) {
        Fail(t.pos, "invalid number '" + std::string(s_.substr(start, i_ - start)) +
                        "': exponent without digits");
      }
      while (IsDigit(Cur()))
        Advance();
    }
    CheckNumberEnd(t, start);
    const char* b = s_.data() + start;
    const char* e = s_.data() + i_;
    if (integral) {
      int64_t i = 0;
      if (auto r = std::from_chars(b, e, i); r.ec == std::errc() && r.ptr == e) {
        t.number = i;
        return;
      }
      uint64_t u = 0;
      if (auto r = std::from_chars(b, e, u); r.ec == std::errc() && r.ptr == e) {
        t.number = u;
        return;
      }
    }
    double d = 0;
    auto r = std::from_chars(b, e, d);
    if (r.ec != std::errc() || r.ptr != e) {
      Fail(t.pos, "number out of range '" + std::string(s_.substr(start, i_ - start)) + "'");
    }
    t.number = d;
  }

  // `12abc` is one bad token, not a number and a name.
  void CheckNumberEnd(const Token& t, size_t start) {
    if (options_.range_dots && Cur() == '.' && At(i_ + 1) == '.') return;  // `1..3`
    if (i_ < s_.size() && (IsIdentPart(Cur()) || Cur() == '.')) {
      while (i_ < s_.size() && (IsIdentPart(Cur()) || Cur() == '.'))
        Advance();
      Fail(t.pos, "invalid number '" + std::string(s_.substr(start, i_ - start)) + "'");
    }
  }

  void ScanString(Token& t) {
    unsigned char quote = Cur();
    Advance();
    t.kind = TokenKind::kString;
    while (true) {
      if (i_ >= s_.size()) Fail(t.pos, "unterminated string");
      unsigned char c = Cur();
      if (c == quote) {
        Advance();
        return;
      }
      if (c == '\\') {
        Position esc = Here();
        Advance();
        ScanEscape(t, esc);
        continue;
      }
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        Fail(Here(), "control character in string");
      }
      t.value.push_back(static_cast<char>(c));
      Advance();
    }
  }

  uint32_t Hex4(Position esc) {
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      int h = HexDigit(Cur());
      if (h < 0) Fail(esc, "invalid \\u escape (four hexadecimal digits expected)");
      cp = cp * 16 + static_cast<uint32_t>(h);
      Advance();
    }
    return cp;
  }

  void ScanEscape(Token& t, Position esc) {
    if (i_ >= s_.size()) Fail(t.pos, "unterminated string");
    unsigned char c = Cur();
    Advance();
    // JSON's escapes, plus \' for single-quoted strings.
    static constexpr std::string_view kFrom = "'\"\\/bfnrt";
    static constexpr std::string_view kTo = "'\"\\/\b\f\n\r\t";
    if (size_t k = kFrom.find(static_cast<char>(c)); k != std::string_view::npos) {
      t.value.push_back(kTo[k]);
      return;
    }
    if (c != 'u') Fail(esc, "invalid escape in string");
    uint32_t cp = Hex4(esc);
    if (cp >= 0xDC00 && cp <= 0xDFFF) Fail(esc, "unpaired surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (Cur() != '\\' || At(i_ + 1) != 'u') Fail(esc, "unpaired surrogate in \\u escape");
      Advance();
      Advance();
      uint32_t lo = Hex4(esc);
      if (lo < 0xDC00 || lo > 0xDFFF) Fail(esc, "unpaired surrogate in \\u escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    AppendUtf8(t.value, cp);
  }

  std::string_view s_;
  const LexOptions& options_;
  size_t i_ = 0;
  uint32_t line_ = 1;
  uint32_t column_ = 1;
};

}  // namespace

Result<std::vector<Token>> Lex(std::string_view text, const Limits& limits,
                               const LexOptions& options) {
  if (text.size() > limits.max_length) {
    return Error(Errc::kLimitExceeded, "query is " + std::to_string(text.size()) +
                                           " bytes long; the limit is " +
                                           std::to_string(limits.max_length));
  }
  if (!strings::IsValidUtf8(text)) return Error(Errc::kSyntax, "query is not valid UTF-8");
  return Catching([&] { return Lexer(text, options).Run(); });
}

}  // namespace orrery::query
