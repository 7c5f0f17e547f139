#include "twins/import_file.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/strings.h"

namespace orrery::twins {
namespace json = boost::json;

namespace {
constexpr size_t kChunk = 64 << 10;

std::string_view Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

bool Blank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}
}  // namespace

std::string_view SectionName(ImportSection s) {
  switch (s) {
    case ImportSection::kNone:
      return "";
    case ImportSection::kHeader:
      return "Header";
    case ImportSection::kModels:
      return "Models";
    case ImportSection::kTwins:
      return "Twins";
    case ImportSection::kRelationships:
      return "Relationships";
  }
  return "";
}

ImportReader::ImportReader(std::istream& in, ImportFileLimits limits) : in_(in), limits_(limits) {}

size_t ImportReader::count(ImportSection s) const {
  return counts_[static_cast<size_t>(s)];
}

void ImportReader::Problem(std::string message, bool fatal) {
  ++problem_count_;
  if (problems_.size() < limits_.max_problems || fatal) {
    problems_.push_back(
        {.line = line_, .section = section_, .message = std::move(message), .fatal = fatal});
  }
  if (fatal) fatal_ = true;
}

ImportReader::Read ImportReader::ReadLine(std::string& out) {
  out.clear();
  bool too_long = false;
  for (;;) {
    if (buffer_pos_ < buffer_.size()) {
      auto nl = buffer_.find('\n', buffer_pos_);
      size_t end = nl == std::string::npos ? buffer_.size() : nl;
      size_t take = end - buffer_pos_;
      if (!too_long && out.size() + take <= limits_.max_line_bytes) {
        out.append(buffer_, buffer_pos_, take);
      } else {
        too_long = true;  // keep reading to the line's end, keeping nothing
        out.clear();
      }
      buffer_pos_ = end;
      if (nl != std::string::npos) {
        ++buffer_pos_;
        return too_long ? Read::kTooLong : Read::kLine;
      }
    }
    buffer_.resize(kChunk);
    in_.read(buffer_.data(), static_cast<std::streamsize>(kChunk));
    buffer_.resize(static_cast<size_t>(in_.gcount()));
    buffer_pos_ = 0;
    if (buffer_.empty()) {
      if (in_.bad()) return Read::kError;
      // The last line need not end with a newline.
      if (too_long) return Read::kTooLong;
      return out.empty() ? Read::kEnd : Read::kLine;
    }
  }
}

bool ImportReader::Marker(const json::object& o) {
  if (o.size() != 1) return false;
  auto& [key, value] = *o.begin();
  if (!strings::IEquals(key, "Section")) return false;
  std::string_view name = value.is_string() ? std::string_view(value.get_string()) : "";
  ImportSection next = ImportSection::kNone;
  for (auto s : {ImportSection::kHeader, ImportSection::kModels, ImportSection::kTwins,
                 ImportSection::kRelationships}) {
    if (strings::IEquals(name, SectionName(s))) next = s;
  }
  if (next == ImportSection::kNone) {
    Problem(fmt::format("unknown section {} (the sections are Header, Models, Twins and "
                        "Relationships)",
                        json::serialize(value)),
            true);
    return true;
  }
  if (section_ == ImportSection::kNone && next != ImportSection::kHeader) {
    Problem(R"(the file must start with {"Section": "Header"})", true);
    return true;
  }
  if (next == ImportSection::kHeader && section_ != ImportSection::kNone) {
    Problem("the Header section may only come first", true);
    return true;
  }
  if (section_ == ImportSection::kHeader && next != ImportSection::kHeader && !header_line_seen_) {
    Problem(R"(the Header section needs a line such as {"fileVersion": "1.0.0"})", true);
    return true;
  }
  if (next < section_) {
    Problem(fmt::format("section {} comes after {}; the order is Header, Models, Twins, "
                        "Relationships",
                        SectionName(next), SectionName(section_)),
            true);
    return true;
  }
  section_ = next;
  return true;
}

std::optional<ImportEntity> ImportReader::Entity(json::object o) {
  ImportEntity e{.section = section_, .line = line_};
  size_t limit = 0;
  switch (section_) {
    case ImportSection::kNone:
      Problem(R"(the file must start with {"Section": "Header"})", true);
      return std::nullopt;
    case ImportSection::kHeader: {
      if (header_line_seen_) {
        Problem("the Header section has a single line");
        return std::nullopt;
      }
      header_line_seen_ = true;
      auto version = Str(o, "fileVersion");
      if (version.empty()) {
        Problem(R"(the header has no "fileVersion" (such as "1.0.0"))", true);
      } else if (version != "1" && !version.starts_with("1.")) {
        Problem(fmt::format("fileVersion '{}' is not supported (1.0.0 is)", version), true);
      }
      header_ = std::move(o);
      return std::nullopt;
    }
    case ImportSection::kModels: {
      e.id = std::string(Str(o, "@id"));
      if (e.id.empty()) {
        Problem("a model must be a DTDL Interface object with an \"@id\"");
        return std::nullopt;
      }
      if (!model_ids_.insert(e.id).second) {
        Problem(fmt::format("model '{}' appears twice in the file", e.id));
        return std::nullopt;
      }
      limit = limits_.max_models;
      break;
    }
    case ImportSection::kTwins: {
      e.id = std::string(Str(o, "$dtId"));
      auto* meta = o.if_contains("$metadata");
      if (e.id.empty() || !meta || !meta->is_object() ||
          Str(meta->get_object(), "$model").empty()) {
        Problem(R"(a twin needs "$dtId" and "$metadata": {"$model": "dtmi:…"})");
        return std::nullopt;
      }
      limit = limits_.max_twins;
      break;
    }
    case ImportSection::kRelationships: {
      for (auto key : {"$dtId", "$relationshipId", "$targetId", "$relationshipName"}) {
        if (Str(o, key).empty()) {
          Problem(fmt::format(
              R"(a relationship needs "$dtId" (its source), "$relationshipId", "$targetId" and )"
              R"("$relationshipName"; "{}" is missing)",
              key));
          return std::nullopt;
        }
      }
      e.id = fmt::format("{}/{}", Str(o, "$dtId"), Str(o, "$relationshipId"));
      limit = limits_.max_relationships;
      break;
    }
  }
  size_t& n = counts_[static_cast<size_t>(section_)];
  if (n >= limit) {
    Problem(
        fmt::format("more than {} {} in one import job (the limit)", limit, SectionName(section_)),
        true);
    return std::nullopt;
  }
  ++n;
  e.value = std::move(o);
  return e;
}

std::optional<ImportEntity> ImportReader::Next() {
  std::string text;
  while (!fatal_ && !ended_) {
    Read r = ReadLine(text);
    if (r == Read::kEnd) {
      ended_ = true;
      if (section_ == ImportSection::kNone) {
        Problem(R"(the file is empty; it must start with {"Section": "Header"})", true);
      } else if (section_ == ImportSection::kHeader && !header_line_seen_) {
        Problem(R"(the Header section needs a line such as {"fileVersion": "1.0.0"})", true);
      }
      break;
    }
    ++line_;
    if (r == Read::kError) {
      Problem("the file could not be read", true);
      break;
    }
    if (r == Read::kTooLong) {
      Problem(fmt::format("the line is longer than {} bytes", limits_.max_line_bytes),
              section_ == ImportSection::kNone);
      continue;
    }
    std::string_view body = text;
    if (line_ == 1 && body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
    if (Blank(body)) continue;
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
      std::string why = ec ? fmt::format("not JSON: {}", ec.message()) : "not a JSON object";
      if (section_ == ImportSection::kNone) {
        Problem(fmt::format(R"(the file must start with {{"Section": "Header"}} ({}))", why), true);
      } else {
        Problem(std::move(why));
      }
      continue;
    }
    if (Marker(v.get_object())) continue;
    if (auto e = Entity(std::move(v.get_object()))) return e;
  }
  return std::nullopt;
}

}  // namespace orrery::twins
