#include "base/config.h"

#include <fstream>

#include <gtest/gtest.h>

namespace orrery::config {
namespace {

Schema TestSchema() {
  Schema s;
  s.Add({.key = "https.port",
         .type = Type::kInt,
         .default_value = "443",
         .help = "HTTPS port",
         .min = 0,
         .max = 65535,
         .flag = "https-port"});
  s.Add({.key = "server.host_name",
         .type = Type::kString,
         .default_value = "localhost",
         .help = "host name"});
  s.Add({.key = "log.format",
         .type = Type::kString,
         .default_value = "human",
         .help = "format",
         .choices = {"human", "json"}});
  s.Add({.key = "server.bind",
         .type = Type::kStringList,
         .default_value = "127.0.0.1, ::1",
         .help = "addresses"});
  s.Add({.key = "eventlog.retention",
         .type = Type::kDuration,
         .default_value = "1d",
         .help = "retention"});
  s.Add({.key = "eventlog.segment_size",
         .type = Type::kSize,
         .default_value = "64MiB",
         .help = "segment"});
  s.Add({.key = "mqtt.enabled", .type = Type::kBool, .default_value = "true", .help = "on"});
  return s;
}

std::filesystem::path WriteTemp(const std::string& name, const std::string& text) {
  auto p =
      std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(p) << text;
  return p;
}

TEST(ConfigTest, DefaultsApply) {
  auto s = Settings::Load(TestSchema(), {});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->Int("https.port"), 443);
  EXPECT_EQ(s->String("server.host_name"), "localhost");
  EXPECT_EQ(s->List("server.bind"), (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(s->DurationMs("eventlog.retention"), 86'400'000);
  EXPECT_EQ(s->Bytes("eventlog.segment_size"), 64 << 20);
  EXPECT_TRUE(s->Bool("mqtt.enabled"));
  EXPECT_EQ(s->Origin("https.port"), "default");
}

TEST(ConfigTest, PrecedenceIsFileThenEnvThenFlags) {
  auto file = WriteTemp("prec", "[https]\nport = 1000\n[server]\nhost_name = \"file-host\"\n");
  Sources src;
  src.file = file;
  auto s = Settings::Load(TestSchema(), src);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->Int("https.port"), 1000);
  EXPECT_EQ(s->Origin("https.port"), "file " + file.string());

  src.env = {{"ORRERY_HTTPS_PORT", "2000"}, {"PATH", "/bin"}};
  s = Settings::Load(TestSchema(), src);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Int("https.port"), 2000);
  EXPECT_EQ(s->Origin("https.port"), "env ORRERY_HTTPS_PORT");
  EXPECT_EQ(s->String("server.host_name"), "file-host");

  src.flags = {{"https.port", "3000"}};
  s = Settings::Load(TestSchema(), src);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Int("https.port"), 3000);
  EXPECT_EQ(s->Origin("https.port"), "flag --https-port");
  std::filesystem::remove(file);
}

TEST(ConfigTest, BadValuesNameKeyAndSource) {
  Sources src;
  src.env = {{"ORRERY_HTTPS_PORT", "abc"}};
  auto s = Settings::Load(TestSchema(), src);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("https.port"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("ORRERY_HTTPS_PORT"), std::string::npos);

  src.env = {{"ORRERY_HTTPS_PORT", "70000"}};
  s = Settings::Load(TestSchema(), src);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("0..65535"), std::string::npos) << s.error().message();

  src.env = {{"ORRERY_LOG_FORMAT", "xml"}};
  s = Settings::Load(TestSchema(), src);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("human, json"), std::string::npos) << s.error().message();
}

TEST(ConfigTest, MalformedAndUnknownInFileAreErrors) {
  auto bad = WriteTemp("bad", "[https\nport = 1\n");
  auto s = Settings::Load(TestSchema(), {.file = bad});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("line 1"), std::string::npos) << s.error().message();

  auto unknown = WriteTemp("unknown", "[https]\nprot = 1\n");
  s = Settings::Load(TestSchema(), {.file = unknown});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("https.prot"), std::string::npos) << s.error().message();

  auto wrong_type = WriteTemp("type", "[https]\nport = \"x\"\n");
  s = Settings::Load(TestSchema(), {.file = wrong_type});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("expected an integer"), std::string::npos);

  s = Settings::Load(TestSchema(), {.file = "/nonexistent/orrery.toml"});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("not found"), std::string::npos);
  for (auto& p : {bad, unknown, wrong_type})
    std::filesystem::remove(p);
}

TEST(ConfigTest, TomlDurationsSizesAndLists) {
  auto f = WriteTemp("units",
                     "[eventlog]\nretention = \"7d\"\nsegment_size = 1048576\n"
                     "[server]\nbind = [\"0.0.0.0\"]\n");
  auto s = Settings::Load(TestSchema(), {.file = f});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->DurationMs("eventlog.retention"), 7 * 86'400'000LL);
  EXPECT_EQ(s->Bytes("eventlog.segment_size"), 1048576);
  EXPECT_EQ(s->List("server.bind"), std::vector<std::string>{"0.0.0.0"});
  std::filesystem::remove(f);
}

TEST(ConfigTest, UnknownEnvironmentVariablesAreReported) {
  auto s = Settings::Load(TestSchema(), {.env = {{"ORRERY_HTTPS_PROT", "1"}}});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->unknown_env(), std::vector<std::string>{"ORRERY_HTTPS_PROT"});
}

TEST(ConfigTest, ParsesUnits) {
  EXPECT_EQ(*ParseDurationMs("500ms"), 500);
  EXPECT_EQ(*ParseDurationMs("2m"), 120'000);
  EXPECT_FALSE(ParseDurationMs("10"));
  EXPECT_FALSE(ParseDurationMs("10 weeks"));
  EXPECT_EQ(*ParseSize("64KiB"), 65536);
  EXPECT_EQ(*ParseSize("2GB"), 2'000'000'000);
  EXPECT_EQ(*ParseSize("17"), 17);
  EXPECT_FALSE(ParseSize("1XB"));
  EXPECT_FALSE(ParseSize("99999999999999TiB"));
}

TEST(ConfigTest, EnvNamesAndReference) {
  EXPECT_EQ(Schema::EnvName("server.host_name"), "ORRERY_SERVER_HOST_NAME");
  auto ref = TestSchema().MarkdownReference();
  EXPECT_NE(ref.find("| `https.port` | `ORRERY_HTTPS_PORT` | `--https-port` | `443` |"),
            std::string::npos)
      << ref;
}

}  // namespace
}  // namespace orrery::config
