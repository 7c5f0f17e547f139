#include "query/ast.h"

#include <charconv>

namespace orrery::query {

std::string_view BinaryOpText(BinaryOp op) {
  switch (op) {
    case BinaryOp::kEq:
      return "=";
    case BinaryOp::kNe:
      return "!=";
    case BinaryOp::kLt:
      return "<";
    case BinaryOp::kLe:
      return "<=";
    case BinaryOp::kGt:
      return ">";
    case BinaryOp::kGe:
      return ">=";
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
  }
  return "?";
}

namespace {

bool PlainName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$' || c >= 0x80;
    if (!ok) return false;
  }
  return true;
}

void AppendName(std::string& out, std::string_view name) {
  if (PlainName(name)) {
    out += name;
  } else {
    out += "[[";
    out += name;
    out += "]]";
  }
}

void AppendQuoted(std::string& out, std::string_view s) {
  out.push_back('\'');
  for (char c : s) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
}

void AppendLiteral(std::string& out, const boost::json::value& v) {
  char buf[64];
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      out += std::to_string(v.get_int64());
      return;
    case boost::json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return;
    case boost::json::kind::double_: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
      out.append(buf, r.ptr);
      return;
    }
    case boost::json::kind::string:
      AppendQuoted(out, v.get_string());
      return;
    default:
      out += "?";  // the parser makes no array or object literals
      return;
  }
}

void Append(std::string& out, const Expr& e);

void AppendList(std::string& out, const std::vector<ExprPtr>& items, size_t from) {
  for (size_t i = from; i < items.size(); ++i) {
    if (i > from) out += ", ";
    Append(out, *items[i]);
  }
}

void Append(std::string& out, const Expr& e) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      AppendLiteral(out, e.literal);
      return;
    case ExprKind::kUndefined:
      out += "undefined";
      return;
    case ExprKind::kName:
      AppendName(out, e.name);
      return;
    case ExprKind::kMember:
      Append(out, *e.children[0]);
      out += ".";
      AppendName(out, e.name);
      return;
    case ExprKind::kIndex:
      Append(out, *e.children[0]);
      out += "[";
      Append(out, *e.children[1]);
      out += "]";
      return;
    case ExprKind::kArray:
      out += "[";
      AppendList(out, e.children, 0);
      out += "]";
      return;
    case ExprKind::kObject:
      out += "{";
      for (size_t i = 0; i < e.children.size(); ++i) {
        if (i > 0) out += ", ";
        AppendQuoted(out, e.keys[i]);
        out += ": ";
        Append(out, *e.children[i]);
      }
      out += "}";
      return;
    case ExprKind::kNegate:
    case ExprKind::kPlus:
    case ExprKind::kNot:
      out += e.kind == ExprKind::kNot ? "(NOT " : (e.kind == ExprKind::kNegate ? "(-" : "(+");
      Append(out, *e.children[0]);
      out += ")";
      return;
    case ExprKind::kAnd:
    case ExprKind::kOr:
      out += "(";
      for (size_t i = 0; i < e.children.size(); ++i) {
        if (i > 0) out += e.kind == ExprKind::kAnd ? " AND " : " OR ";
        Append(out, *e.children[i]);
      }
      out += ")";
      return;
    case ExprKind::kBinary:
      out += "(";
      Append(out, *e.children[0]);
      out += " ";
      out += BinaryOpText(e.op);
      out += " ";
      Append(out, *e.children[1]);
      out += ")";
      return;
    case ExprKind::kIn:
      out += "(";
      Append(out, *e.children[0]);
      out += e.negated ? " NOT IN (" : " IN (";
      AppendList(out, e.children, 1);
      out += "))";
      return;
    case ExprKind::kBetween:
      out += "(";
      Append(out, *e.children[0]);
      out += e.negated ? " NOT BETWEEN " : " BETWEEN ";
      Append(out, *e.children[1]);
      out += " AND ";
      Append(out, *e.children[2]);
      out += ")";
      return;
    case ExprKind::kCall:
      out += e.name;
      out += "(";
      if (e.star) out += "*";
      AppendList(out, e.children, 0);
      out += ")";
      return;
  }
}

}  // namespace

std::string ToString(const Expr& e) {
  std::string out;
  Append(out, e);
  return out;
}

}  // namespace orrery::query
