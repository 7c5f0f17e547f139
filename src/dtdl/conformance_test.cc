// The official DTDL parser conformance corpus (DTDLParser's test-cases/), run in place from
// ../shared/data/dtdl-parser-test-cases. Each case gives input documents, options, an
// optional resolution script, and the expected outcome: valid, or the parsing errors with
// their ValidationIDs (and, for resolution cases, the identifiers left unresolved).
//
// A case passes when our verdict agrees and, where the case lists parsing errors, we report
// exactly the same set of ValidationIDs. Cases that do not pass yet are listed in
// testdata/known_exceptions.txt; the test fails on any failure not listed there and on any
// listed case that now passes, so the list only shrinks. DTDL v4 cases, the message-phrase
// cases and DTDL v1 extension contexts are out of scope and counted as skipped.
//
// Set ORRERY_DTDL_WRITE_EXCEPTIONS=<file> to write the current failures in the exceptions
// format (grouped by the first ValidationID involved), ORRERY_DTDL_FAILURES=<file> to write
// every failure with its reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "dtdl/dtmi.h"
#include "dtdl/parser.h"

namespace orrery::dtdl {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

fs::path SourceDir() {
  if (const char* s = std::getenv("ORRERY_SOURCE_DIR")) return s;
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
}

fs::path CorpusDir() {
  return SourceDir() / ".." / "shared" / "data" / "dtdl-parser-test-cases" / "test-cases";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.starts_with("\xEF\xBB\xBF")) s.erase(0, 3);
  return s;
}

// The DTDL version a case exercises: the highest "dtmi:dtdl:context;N" in its input, else
// the file name's "V<n>" suffix.
int CaseVersion(const json::value& input, const std::string& file) {
  static const std::regex ctx_re("dtmi:dtdl:context;([0-9]+)");
  std::string s = json::serialize(input);
  int best = 0;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), ctx_re); it != std::sregex_iterator();
       ++it)
    best = std::max(best, std::stoi((*it)[1].str()));
  if (best != 0) return best;
  static const std::regex file_re("V([0-9])\\.json$");
  std::smatch m;
  if (std::regex_search(file, m, file_re)) return std::stoi(m[1].str());
  return 0;
}

struct Tally {
  int pass = 0, fail = 0, skip = 0;
};

struct Outcome {
  bool pass = false;
  std::string why;    // for failures: short description
  std::string group;  // for failures: grouping key for the exceptions file
};

std::set<std::string> Strings(const json::value* v) {
  std::set<std::string> out;
  if (v && v->is_array())
    for (const auto& x : v->get_array())
      if (x.is_string()) out.insert(std::string(x.get_string()));
  return out;
}

Outcome RunCase(const json::object& c) {
  ParseOptions opts;
  if (auto o = c.find("options"); o != c.end() && o->value().is_array()) {
    for (const auto& x : o->value().get_array()) {
      if (x == "AllowUndefinedExtensions") opts.undefined_extensions = UndefinedExtensions::kAllow;
      if (x == "DisallowUndefinedExtensions")
        opts.undefined_extensions = UndefinedExtensions::kDisallow;
    }
  }
  if (auto m = c.find("maxDtdlVersion"); m != c.end() && m->value().is_int64())
    opts.max_dtdl_version = static_cast<int>(m->value().get_int64());
  // Resolution script: answer each request with the documents defining the ids asked for.
  std::map<std::string, std::string> by_id;
  if (auto r = c.find("resolution"); r != c.end() && r->value().is_array()) {
    for (const auto& step : r->value().get_array()) {
      const auto* resp = step.as_object().if_contains("response");
      if (!resp || !resp->is_array()) continue;
      for (const auto& doc : resp->get_array()) {
        if (const auto* id = doc.is_object() ? doc.get_object().if_contains("@id") : nullptr;
            id && id->is_string())
          by_id[std::string(id->get_string())] = json::serialize(doc);
      }
    }
    opts.resolver = [by_id](const std::vector<std::string>& ids) {
      std::vector<std::string> docs;
      for (const auto& id : ids)
        if (auto it = by_id.find(id); it != by_id.end()) docs.push_back(it->second);
      return docs;
    };
  }
  std::vector<std::string> docs;
  for (const auto& d : c.at("input").get_array())
    docs.push_back(json::serialize(d));
  ParseResult r = Parse(docs, opts);
  // Grouping for the exceptions file: features we know we lack come first; a failure in a
  // case that uses an extension we implement is grouped by its reason, under that extension.
  std::string text = json::serialize(c.at("input"));
  std::string feature, extension;
  static const std::regex lacking_re("dtmi:dtdl:extension:layering");
  static const std::regex ext_re(
      "dtmi:(dtdl:extension:(mqtt|historization|annotation|overriding|requirement)|"
      "iotcentral:context)");
  std::smatch em;
  if (std::regex_search(text, em, ext_re)) extension = em[1].str();
  if (std::regex_search(text, lacking_re)) {
    feature = "language extension not implemented: dtdl:extension:layering";
  } else if (const auto* q = c.if_contains("quirks");
             q && q->is_array() && !q->get_array().empty()) {
    feature = "parser quirk options (TolerateSolecisms*) not implemented";
  } else if (c.contains("partialResolution")) {
    feature = "partial resolution not implemented";
  }

  bool expect_valid = c.at("valid").as_bool();
  std::set<std::string> got;
  for (const auto& e : r.errors)
    got.insert(e.validation_id);
  std::set<std::string> want;
  const json::object* expect = nullptr;
  if (auto e = c.find("expect"); e != c.end() && e->value().is_object())
    expect = &e->value().get_object();
  if (expect) {
    if (const auto* pe = expect->if_contains("parsingErrors"); pe && pe->is_array())
      for (const auto& x : pe->get_array())
        want.insert(std::string(x.at("ValidationID").as_string()));
  }
  Outcome out;
  auto fix_group = [&](Outcome o) {
    if (!o.pass && !feature.empty()) o.group = feature;
    if (!o.pass && feature.empty() && !extension.empty()) o.group = extension + ": " + o.group;
    return o;
  };
  auto first = [](const std::set<std::string>& s) {
    return s.empty() ? std::string("(none)") : *s.begin();
  };
  if (expect_valid) {
    if (r.ok()) {
      out.pass = true;
    } else if (!r.errors.empty()) {
      out.why = "expected valid; got " + r.errors[0].validation_id + ": " + r.errors[0].message;
      out.group = "false positive " + r.errors[0].validation_id;
    } else {
      out.why = "expected valid; unresolved " + r.unresolved[0];
      out.group = "false positive: unresolved reference";
    }
    return fix_group(out);
  }
  if (r.ok()) {
    out.why = "expected invalid (" + first(want) + "); parsed as valid";
    out.group = "not detected " + first(want);
    return fix_group(out);
  }
  if (expect && expect->contains("unresolvedIdentifiers")) {
    std::set<std::string> want_u = Strings(expect->if_contains("unresolvedIdentifiers"));
    std::set<std::string> got_u(r.unresolved.begin(), r.unresolved.end());
    if (r.errors.empty() && want_u == got_u) {
      out.pass = true;
    } else {
      out.why = "unresolved identifiers differ";
      out.group = "resolution: unresolved identifiers differ";
    }
    return fix_group(out);
  }
  if (want.empty() || want == got) {
    out.pass = true;
    return fix_group(out);
  }
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  std::ostringstream why;
  why << "ValidationIDs differ; missing:";
  for (const auto& m : missing)
    why << ' ' << m;
  why << "; extra:";
  for (const auto& x : extra)
    why << ' ' << x;
  out.why = why.str();
  out.group = missing.empty() ? "extra " + extra[0] : "wrong ValidationID, expected " + missing[0];
  return fix_group(out);
}

struct Exceptions {
  std::set<std::string> cases;
  std::vector<std::pair<std::string, int>> groups;  // reason line, count
};

Exceptions LoadExceptions(const fs::path& p) {
  Exceptions ex;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.starts_with("##")) continue;  // file header
    if (line.starts_with("#")) {
      ex.groups.emplace_back(line, 0);
      continue;
    }
    ex.cases.insert(line);
    if (!ex.groups.empty()) ++ex.groups.back().second;
  }
  return ex;
}

TEST(DtdlConformance, OfficialCorpus) {
  fs::path dir = CorpusDir();
  if (!fs::is_directory(dir)) {
    GTEST_SKIP() << "conformance corpus not found at " << dir
                 << " (expected ../shared/data/dtdl-parser-test-cases next to the source tree)";
  }
  fs::path ex_path = SourceDir() / "src" / "dtdl" / "testdata" / "known_exceptions.txt";
  Exceptions ex = LoadExceptions(ex_path);

  std::map<std::string, Tally> by_folder;
  std::map<int, Tally> by_version;
  std::vector<std::string> unexpected_failures, unexpected_passes, all_failures;
  std::map<std::string, std::vector<std::string>> failure_groups;
  int skipped_v4 = 0, skipped_other = 0;

  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".json")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());

  for (const auto& file : files) {
    std::string rel = fs::relative(file, dir).generic_string();
    std::string folder = rel.substr(0, rel.find('/'));
    json::parse_options po;
    po.max_depth = 100000;
    json::value root = json::parse(ReadFile(file), {}, po);
    if (folder == "phrases") {
      ++skipped_other;
      ++by_folder[folder].skip;
      continue;
    }
    if (folder == "dtmis") {
      const auto& c = root.as_object();
      auto d = ParseDtmi(c.at("idText").as_string());
      bool want = c.at("valid").as_bool();
      bool pass = d.has_value() == want;
      if (pass && d && c.contains("expect")) {
        const auto& e = c.at("expect").as_object();
        pass = d->major == e.at("MajorVersion").to_number<std::int64_t>() &&
               d->minor == e.at("MinorVersion").to_number<std::int64_t>() &&
               d->Versionless() == e.at("Versionless").as_string() &&
               d->IsReserved() == e.at("IsReserved").as_bool() &&
               d->fragment == e.at("Fragment").as_string();
      }
      Tally& t = by_folder[folder];
      (pass ? t.pass : t.fail)++;
      bool listed = ex.cases.contains(rel);
      if (!pass && !listed) unexpected_failures.push_back(rel + ": DTMI verdict differs");
      if (pass && listed) unexpected_passes.push_back(rel);
      if (!pass) failure_groups["dtmi syntax"].push_back(rel);
      continue;
    }
    std::vector<const json::object*> cases;
    if (root.is_array()) {
      for (const auto& c : root.get_array())
        cases.push_back(&c.as_object());
    } else {
      cases.push_back(&root.as_object());
    }
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const json::object& c = *cases[i];
      std::string name =
          cases.size() == 1 && !root.is_array() ? rel : rel + "#" + std::to_string(i);
      Tally& ft = by_folder[folder];
      if (!c.contains("input") || !c.contains("valid")) {
        ++ft.skip;
        ++skipped_other;
        continue;
      }
      int version = CaseVersion(c.at("input"), rel);
      if (version >= 4) {
        ++ft.skip;
        ++skipped_v4;
        ++by_version[version].skip;
        continue;
      }
      Outcome o = RunCase(c);
      if (!o.pass && folder == "specification" && !o.group.starts_with("language extension")) {
        // The file name is the rule: "Requirement-ClassTelemetryCotypePropertyValueFromTableV2".
        std::string rule = file.stem().string();
        o.group = "spec rule " + rule.substr(0, rule.size() - 2) + ": " + o.group;
      }
      Tally& vt = by_version[version];
      (o.pass ? ft.pass : ft.fail)++;
      (o.pass ? vt.pass : vt.fail)++;
      bool listed = ex.cases.contains(name);
      if (!o.pass) failure_groups[o.group].push_back(name);
      if (!o.pass) all_failures.push_back(name + ": " + o.why);
      if (!o.pass && !listed) unexpected_failures.push_back(name + ": " + o.why);
      if (o.pass && listed) unexpected_passes.push_back(name);
    }
  }

  auto pct = [](const Tally& t) {
    int n = t.pass + t.fail;
    return n == 0 ? 100.0 : 100.0 * t.pass / n;
  };
  std::cout << "\nDTDL conformance corpus (" << dir.string() << ")\n";
  std::cout << "  per folder (pass / run, skipped):\n";
  for (const auto& [f, t] : by_folder)
    std::printf("    %-16s %5d / %5d  %6.2f%%  (skipped %d)\n", f.c_str(), t.pass, t.pass + t.fail,
                pct(t), t.skip);
  std::cout << "  per DTDL version:\n";
  for (const auto& [v, t] : by_version)
    std::printf("    v%-15d %5d / %5d  %6.2f%%  (skipped %d)\n", v, t.pass, t.pass + t.fail, pct(t),
                t.skip);
  std::cout << "  skipped: " << skipped_v4 << " DTDL v4 cases (out of scope), " << skipped_other
            << " others (message phrases, cases without input)\n";
  std::cout << "  known exceptions (" << ex_path.filename().string() << "): " << ex.cases.size()
            << " cases\n";
  for (const auto& [reason, n] : ex.groups)
    std::cout << "    " << n << "  " << reason << "\n";

  if (const char* w = std::getenv("ORRERY_DTDL_WRITE_EXCEPTIONS")) {
    std::ofstream out(w);
    out << "## DTDL conformance cases that do not pass yet (see docs/dtdl.md), one per line: the\n"
           "## file path under test-cases/, '#<n>' for the n-th case of a file holding a list.\n"
           "## Each '# ' line is the reason for the group below it: a language extension we lack,\n"
           "## or for the rest the first ValidationID involved ('not detected X': the case is\n"
           "## invalid and we accept it; 'false positive X': valid and we report X; 'wrong\n"
           "## ValidationID, expected X': both invalid, different errors; 'extra X': we report X\n"
           "## besides the expected ones). A prefix names an extension the case uses that we\n"
           "## implement ('dtdl:extension:mqtt: …'); the reason follows it. Regenerate with\n"
           "## ORRERY_DTDL_WRITE_EXCEPTIONS=<file>.\n";
    for (const auto& [g, names] : failure_groups) {
      out << "# " << g << "\n";
      for (const auto& n : names)
        out << n << "\n";
    }
  }

  if (const char* w = std::getenv("ORRERY_DTDL_FAILURES")) {
    std::ofstream out(w);
    for (const auto& f : all_failures)
      out << f << "\n";
  }
  for (std::size_t i = 0; i < unexpected_failures.size() && i < 50; ++i)
    ADD_FAILURE() << "unexpected failure: " << unexpected_failures[i];
  if (unexpected_failures.size() > 50)
    ADD_FAILURE() << "... and " << unexpected_failures.size() - 50 << " more unexpected failures";
  for (std::size_t i = 0; i < unexpected_passes.size() && i < 50; ++i)
    ADD_FAILURE() << "listed in known_exceptions.txt but passes now (remove it): "
                  << unexpected_passes[i];
  if (unexpected_passes.size() > 50)
    ADD_FAILURE() << "... and " << unexpected_passes.size() - 50 << " more that pass now";
}

}  // namespace
}  // namespace orrery::dtdl
