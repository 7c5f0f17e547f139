// Bounds on query text, shared by every dialect. Hostile input is refused with
// Errc::kLimitExceeded before it can cost much: the length is checked before lexing, the
// nesting depth while parsing (every recursive stage — parser, binder, evaluator, destructor —
// recurses at most max_depth levels), and list widths and node counts as they grow.
#pragma once

#include <cstddef>
#include <cstdint>

namespace orrery::query {

struct Limits {
  size_t max_length = 64 * 1024;  // bytes of query text
  uint32_t max_depth = 64;        // nesting of expressions (parentheses, operators, calls)
  uint32_t max_list = 1000;       // items of one IN list, array or object literal, argument list
  uint32_t max_nodes = 10000;     // expression nodes in one statement
};

}  // namespace orrery::query
