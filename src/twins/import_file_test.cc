#include "twins/import_file.h"

#include <sstream>

#include <gtest/gtest.h>

namespace orrery::twins {
namespace {

struct Read {
  std::vector<ImportEntity> entities;
  std::vector<ImportProblem> problems;
  size_t problem_count = 0;
  bool fatal = false;
};

Read ReadAll(const std::string& text, ImportFileLimits limits = {}) {
  std::istringstream in(text);
  ImportReader r(in, limits);
  Read out;
  while (auto e = r.Next())
    out.entities.push_back(std::move(*e));
  out.problems = r.problems();
  out.problem_count = r.problem_count();
  out.fatal = r.fatal();
  return out;
}

std::string Messages(const Read& r) {
  std::string s;
  for (auto& p : r.problems)
    s += "line " + std::to_string(p.line) + ": " + p.message + "\n";
  return s;
}

// ADT's documented sample, with a byte order mark, CRLF line ends and blank lines.
const char* kSample =
    "\xEF\xBB\xBF{\"Section\": \"Header\"}\r\n"
    R"({"fileVersion": "1.0.0", "author": "foobar", "organization": "contoso"})"
    "\n\n"
    R"({"Section": "Models"})"
    "\n"
    R"({"@id":"dtmi:ex:model0;1","@type":"Interface","@context":"dtmi:dtdl:context;2"})"
    "\n"
    R"({"@id":"dtmi:ex:model1;1","@type":"Interface","@context":"dtmi:dtdl:context;2"})"
    "\n"
    R"({"Section": "Twins"})"
    "\n"
    R"({"$dtId":"twin0","$metadata":{"$model":"dtmi:ex:model0;1"},"property00":10})"
    "\n"
    R"({"Section": "Twins"})"
    "\n"
    R"({"$dtId":"twin1","$metadata":{"$model":"dtmi:ex:model1;1"}})"
    "\n   \n"
    R"({"Section": "Relationships"})"
    "\n"
    R"({"$dtId":"twin0","$relationshipId":"r","$targetId":"twin1","$relationshipName":"has"})";

TEST(ImportReaderTest, ReadsTheDocumentedSample) {
  std::istringstream in(kSample);
  ImportReader r(in);
  std::vector<ImportEntity> all;
  while (auto e = r.Next())
    all.push_back(std::move(*e));
  EXPECT_EQ(r.problem_count(), 0u) << r.problems().at(0).message;
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].section, ImportSection::kModels);
  EXPECT_EQ(all[0].id, "dtmi:ex:model0;1");
  EXPECT_EQ(all[0].line, 5u);  // line 3 is blank
  EXPECT_EQ(all[2].section, ImportSection::kTwins);
  EXPECT_EQ(all[2].id, "twin0");
  EXPECT_EQ(all[2].value.at("property00").as_int64(), 10);
  EXPECT_EQ(all[3].line, 10u);  // the repeated marker is accepted
  EXPECT_EQ(all[4].section, ImportSection::kRelationships);
  EXPECT_EQ(all[4].id, "twin0/r");
  EXPECT_EQ(all[4].line, 13u);  // the last line has no newline
  EXPECT_EQ(r.header().at("author").as_string(), "foobar");
  EXPECT_EQ(r.count(ImportSection::kModels), 2u);
  EXPECT_EQ(r.count(ImportSection::kTwins), 2u);
  EXPECT_EQ(r.count(ImportSection::kRelationships), 1u);
  EXPECT_EQ(r.line(), 13u);
}

TEST(ImportReaderTest, SectionsAreOptionalButOrdered) {
  auto twins_only = ReadAll(
      "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\"}\n{\"section\":\"twins\"}\n"
      R"({"$dtId":"a","$metadata":{"$model":"dtmi:ex:A;1"}})");
  EXPECT_EQ(twins_only.problem_count, 0u) << Messages(twins_only);
  EXPECT_EQ(twins_only.entities.size(), 1u);

  auto backwards = ReadAll(
      "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\"}\n{\"Section\":\"Twins\"}\n"
      "{\"Section\":\"Models\"}\n"
      R"({"@id":"dtmi:ex:A;1"})");
  EXPECT_TRUE(backwards.fatal);
  ASSERT_EQ(backwards.problems.size(), 1u);
  EXPECT_EQ(backwards.problems[0].line, 4u);
  EXPECT_NE(backwards.problems[0].message.find("Models comes after Twins"), std::string::npos);
  EXPECT_TRUE(backwards.entities.empty());

  auto unknown =
      ReadAll("{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0\"}\n{\"Section\":\"X\"}\n");
  EXPECT_TRUE(unknown.fatal);
  EXPECT_NE(Messages(unknown).find("unknown section \"X\""), std::string::npos);
}

TEST(ImportReaderTest, TheHeaderComesFirst) {
  for (std::string text : {std::string(""), std::string("\n\n"),
                           std::string("{\"Section\":\"Models\"}\n{\"@id\":\"dtmi:a:b;1\"}"),
                           std::string("not json\n")}) {
    auto r = ReadAll(text);
    EXPECT_TRUE(r.fatal) << text;
    EXPECT_NE(Messages(r).find("Header"), std::string::npos) << Messages(r);
  }
  auto no_version = ReadAll("{\"Section\":\"Header\"}\n{\"author\":\"me\"}\n");
  EXPECT_TRUE(no_version.fatal);
  EXPECT_NE(Messages(no_version).find("fileVersion"), std::string::npos);
  auto missing_line = ReadAll("{\"Section\":\"Header\"}\n{\"Section\":\"Twins\"}\n");
  EXPECT_TRUE(missing_line.fatal);
  auto v2 = ReadAll("{\"Section\":\"Header\"}\n{\"fileVersion\":\"2.0.0\"}\n");
  EXPECT_TRUE(v2.fatal);
  EXPECT_NE(Messages(v2).find("'2.0.0' is not supported"), std::string::npos);
}

TEST(ImportReaderTest, BadLinesAreReportedWithTheirNumbersAndSkipped) {
  auto r = ReadAll(
      "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\"}\n"
      "{\"Section\":\"Models\"}\n"
      "{\"@type\":\"Interface\"}\n"                                          // 4: no @id
      "{\"@id\":\"dtmi:ex:A;1\"}\n"                                          // 5
      "{\"@id\":\"dtmi:ex:A;1\"}\n"                                          // 6: twice
      "{\"Section\":\"Twins\"}\n"                                            // 7
      "{\"$dtId\":\"a\"}\n"                                                  // 8: no $metadata
      "{\"$dtId\":\"b\",\"$metadata\":{\"$model\":\"dtmi:ex:A;1\"}\n"        // 9: not JSON
      "[1,2]\n"                                                              // 10: not an object
      "{\"$dtId\":\"c\",\"$metadata\":{\"$model\":\"dtmi:ex:A;1\"}}\n"       // 11
      "{\"Section\":\"Relationships\"}\n"                                    // 12
      "{\"$dtId\":\"c\",\"$relationshipId\":\"r\",\"$targetId\":\"c\"}\n");  // 13
  EXPECT_FALSE(r.fatal);
  std::vector<size_t> lines;
  for (auto& p : r.problems)
    lines.push_back(p.line);
  EXPECT_EQ(lines, (std::vector<size_t>{4, 6, 8, 9, 10, 13})) << Messages(r);
  EXPECT_NE(r.problems[1].message.find("appears twice"), std::string::npos);
  EXPECT_EQ(r.problems[2].section, ImportSection::kTwins);
  EXPECT_NE(r.problems[3].message.find("not JSON"), std::string::npos);
  EXPECT_NE(r.problems[5].message.find("\"$relationshipName\" is missing"), std::string::npos);
  ASSERT_EQ(r.entities.size(), 2u);
  EXPECT_EQ(r.entities[0].id, "dtmi:ex:A;1");
  EXPECT_EQ(r.entities[1].id, "c");
}

TEST(ImportReaderTest, LimitsAreEnforced) {
  std::string big =
      "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\"}\n{\"Section\":\"Twins\"}\n";
  big +=
      "{\"$dtId\":\"" + std::string(300, 'x') + "\",\"$metadata\":{\"$model\":\"dtmi:a:b;1\"}}\n";
  for (int i = 0; i < 3; ++i)
    big += "{\"$dtId\":\"t" + std::to_string(i) + "\",\"$metadata\":{\"$model\":\"dtmi:a:b;1\"}}\n";
  auto r = ReadAll(big, {.max_line_bytes = 256, .max_twins = 2, .max_problems = 10});
  ASSERT_EQ(r.problems.size(), 2u) << Messages(r);
  EXPECT_EQ(r.problems[0].line, 4u);
  EXPECT_NE(r.problems[0].message.find("longer than 256 bytes"), std::string::npos);
  EXPECT_FALSE(r.problems[0].fatal);
  EXPECT_EQ(r.problems[1].line, 7u);
  EXPECT_NE(r.problems[1].message.find("more than 2 Twins"), std::string::npos);
  EXPECT_TRUE(r.fatal);
  EXPECT_EQ(r.entities.size(), 2u);

  // Problems are all counted, the first kept.
  std::string many =
      "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\"}\n{\"Section\":\"Twins\"}\n";
  for (int i = 0; i < 50; ++i)
    many += "{}\n";
  auto m = ReadAll(many, {.max_problems = 5});
  EXPECT_EQ(m.problem_count, 50u);
  EXPECT_EQ(m.problems.size(), 5u);
}

}  // namespace
}  // namespace orrery::twins
