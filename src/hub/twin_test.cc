#include "hub/twin.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "hub/errc.h"

namespace orrery::hub {
namespace {
namespace json = boost::json;

json::object Obj(std::string_view text) {
  return json::parse(text).as_object();
}

TEST(TwinTest, PatchMergesRemovesWithNullAndCountsVersions) {
  Twin t;
  TwinLimits limits;
  auto p1 = Obj(R"({"a":1,"nested":{"x":true,"y":"s"}})");
  ASSERT_TRUE(CheckPatch(t, SectionKind::kDesired, p1, limits));
  auto applied = ApplyPatch(t, SectionKind::kDesired, p1, 1000);
  EXPECT_EQ(applied, p1);
  EXPECT_EQ(t.desired.version, 2);
  EXPECT_EQ(t.version, 2u);
  EXPECT_EQ(json::serialize(t.desired.values), R"({"a":1,"nested":{"x":true,"y":"s"}})");

  auto p2 = Obj(R"({"nested":{"x":null,"z":3},"a":null,"b":[1,2]})");
  ASSERT_TRUE(CheckPatch(t, SectionKind::kDesired, p2, limits));
  ApplyPatch(t, SectionKind::kDesired, p2, 2000);
  EXPECT_EQ(json::serialize(t.desired.values), R"({"nested":{"y":"s","z":3},"b":[1,2]})");
  EXPECT_EQ(t.desired.version, 3);
  // The reported section and tags are untouched and keep their own versions.
  EXPECT_EQ(t.reported.version, 1);
  EXPECT_TRUE(t.tags.empty());
}

TEST(TwinTest, MetadataStampsLeavesAndAncestors) {
  Twin t;
  ApplyPatch(t, SectionKind::kDesired, Obj(R"({"cfg":{"rate":5,"mode":"fast"}})"), 1000);
  ApplyPatch(t, SectionKind::kDesired, Obj(R"({"cfg":{"rate":6}})"), 5000);
  auto svc = SectionToServiceJson(t.desired, true);
  auto& meta = svc["$metadata"].as_object();
  EXPECT_EQ(meta["$lastUpdatedVersion"], 3);
  auto& cfg = meta["cfg"].as_object();
  EXPECT_EQ(cfg["$lastUpdated"], "1970-01-01T00:00:05.000Z");  // ancestor of a change
  EXPECT_EQ(cfg["rate"].as_object()["$lastUpdated"], "1970-01-01T00:00:05.000Z");
  EXPECT_EQ(cfg["rate"].as_object()["$lastUpdatedVersion"], 3);
  EXPECT_EQ(cfg["mode"].as_object()["$lastUpdated"], "1970-01-01T00:00:01.000Z");  // unchanged
  EXPECT_EQ(cfg["mode"].as_object()["$lastUpdatedVersion"], 2);
  EXPECT_EQ(svc["$version"], 3);
  // Reported metadata has no versions; the device view has no metadata at all.
  ApplyPatch(t, SectionKind::kReported, Obj(R"({"fw":"1.0"})"), 7000);
  auto rep = SectionToServiceJson(t.reported, false);
  EXPECT_FALSE(rep["$metadata"].as_object()["fw"].as_object().contains("$lastUpdatedVersion"));
  auto dev = TwinToDeviceJson(t);
  EXPECT_EQ(json::serialize(dev), R"({"desired":{"cfg":{"rate":6,"mode":"fast"},"$version":3},)"
                                  R"("reported":{"fw":"1.0","$version":2}})");
}

TEST(TwinTest, TagsChangeTheEtagButReportedDoesNot) {
  Twin t;
  std::string e0 = t.etag();
  EXPECT_EQ(e0, "AAAAAAAAAAE=");
  ApplyPatch(t, SectionKind::kReported, Obj(R"({"x":1})"), 1);
  EXPECT_EQ(t.etag(), e0);
  ApplyPatch(t, SectionKind::kTags, Obj(R"({"site":"a"})"), 1);
  EXPECT_NE(t.etag(), e0);
  EXPECT_EQ(json::serialize(t.tags), R"({"site":"a"})");
}

TEST(TwinTest, ReadOnlyMembersAreIgnored) {
  Twin t;
  auto p = Obj(R"({"$version":99,"$metadata":{"junk":1},"v":1})");
  ASSERT_TRUE(CheckPatch(t, SectionKind::kDesired, p, {}));
  auto applied = ApplyPatch(t, SectionKind::kDesired, p, 1);
  EXPECT_EQ(json::serialize(applied), R"({"v":1})");
  EXPECT_EQ(t.desired.version, 2);
}

TEST(TwinTest, RefusesBadNamesDepthAndSizes) {
  Twin t;
  TwinLimits limits;
  auto why = [&](std::string_view patch, SectionKind k = SectionKind::kDesired) {
    auto st = CheckPatch(t, k, Obj(patch), limits);
    return st ? std::string("accepted") : st.error().message();
  };
  EXPECT_NE(why(R"({"a.b":1})").find("does not allow"), std::string::npos);
  EXPECT_NE(why(R"({"a b":1})").find("does not allow"), std::string::npos);
  EXPECT_NE(why(R"({"x":{"$y":1}})").find("does not allow"), std::string::npos);
  EXPECT_NE(why(R"({"":1})").find("empty"), std::string::npos);
  // Depth: 10 levels of objects are fine, 11 are not.
  std::string deep = "1";
  for (int i = 0; i < 10; ++i)
    deep = R"({"k":)" + deep + "}";
  EXPECT_EQ(why(deep), "accepted");
  EXPECT_NE(why(R"({"k":)" + deep + "}").find("deeper than 10"), std::string::npos);
  EXPECT_NE(why(R"({"a":[[1]]})").find("arrays"), std::string::npos);
  std::string long_value(4097, 'v');
  EXPECT_NE(why(R"({"s":")" + long_value + R"("})").find("longer than 4096"), std::string::npos);
  // Sizes: desired 32 KiB, tags 8 KiB, counted before the patch is applied.
  std::string big(4000, 'x');
  json::object patch;
  for (int i = 0; i < 9; ++i)
    patch["k" + std::to_string(i)] = big;
  auto st = CheckPatch(t, SectionKind::kDesired, patch, limits);
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kTooLarge));
  EXPECT_NE(st.error().message().find("beyond the 32768-byte limit"), std::string::npos)
      << st.error().message();
  EXPECT_TRUE(t.desired.values.empty());  // nothing applied
  json::object tags;
  for (int i = 0; i < 3; ++i)
    tags["t" + std::to_string(i)] = big;
  EXPECT_FALSE(CheckPatch(t, SectionKind::kTags, tags, limits));
  // Removing data frees room: the size is tracked through patches.
  json::object some;
  for (int i = 0; i < 8; ++i)
    some["k" + std::to_string(i)] = big;
  ASSERT_TRUE(CheckPatch(t, SectionKind::kDesired, some, limits));
  ApplyPatch(t, SectionKind::kDesired, some, 1);
  EXPECT_EQ(t.desired.size, 8u * (2 + 4000));
  EXPECT_FALSE(CheckPatch(t, SectionKind::kDesired, Obj(R"({"more":")" + big + R"("})"), limits));
  json::object shrink{{"k0", nullptr}, {"k1", nullptr}};
  ApplyPatch(t, SectionKind::kDesired, shrink, 2);
  EXPECT_EQ(t.desired.size, 6u * (2 + 4000));
  EXPECT_TRUE(CheckPatch(t, SectionKind::kDesired, Obj(R"({"more":")" + big + R"("})"), limits));
}

TEST(TwinTest, SizeAccountingFollowsIotHub) {
  EXPECT_EQ(TwinValueSize(json::parse(R"("abc")")), 3u);
  EXPECT_EQ(TwinValueSize(json::parse("12")), 8u);
  EXPECT_EQ(TwinValueSize(json::parse("1.5")), 8u);
  EXPECT_EQ(TwinValueSize(json::parse("true")), 4u);
  EXPECT_EQ(TwinValueSize(json::parse(R"({"ab":{"c":true}})")), 2u + 1 + 4);
}

TEST(TwinTest, ReplaceSwapsTagsAndDesiredAndReportsRemovals) {
  Twin t;
  ApplyPatch(t, SectionKind::kDesired, Obj(R"({"old":1,"keep":2})"), 1);
  ApplyPatch(t, SectionKind::kReported, Obj(R"({"r":1})"), 1);
  auto push = ReplaceTwin(t, Obj(R"({"tags":{"t":1},"properties":{"desired":{"keep":3,"new":4}}})"),
                          {}, 10);
  ASSERT_TRUE(push) << push.error().message();
  EXPECT_EQ(json::serialize(t.desired.values), R"({"keep":3,"new":4})");
  EXPECT_EQ(json::serialize(t.tags), R"({"t":1})");
  EXPECT_EQ(json::serialize(t.reported.values), R"({"r":1})");
  EXPECT_EQ((*push)["old"], nullptr);
  EXPECT_EQ((*push)["new"], 4);
  EXPECT_EQ(t.desired.version, 3);
  auto bad = ReplaceTwin(t, Obj(R"({"tags":{"a.b":1}})"), {}, 11);
  EXPECT_FALSE(bad);
  EXPECT_EQ(json::serialize(t.tags), R"({"t":1})");
}

TEST(TwinTest, EncodingRoundTrips) {
  Twin t;
  ApplyPatch(t, SectionKind::kDesired, Obj(R"({"a":{"b":1}})"), 1);
  ApplyPatch(t, SectionKind::kTags, Obj(R"({"x":"y"})"), 2);
  t.model_id = "dtmi:com:example:Thermostat;1";
  auto back = DecodeTwin(EncodeTwin(t));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->desired.values, t.desired.values);
  EXPECT_EQ(back->desired.metadata, t.desired.metadata);
  EXPECT_EQ(back->desired.size, t.desired.size);
  EXPECT_EQ(back->tags, t.tags);
  EXPECT_EQ(back->version, t.version);
  EXPECT_EQ(back->etag(), t.etag());
  EXPECT_EQ(back->model_id, t.model_id);
  EXPECT_FALSE(DecodeTwin("{}"));
  EXPECT_FALSE(DecodeTwin("not json"));
}

TEST(TwinTest, ServiceViewHasTheContractsFields) {
  Identity id;
  id.device_id = "d1";
  id.etag = "MQ==";
  Twin t;
  auto o = TwinToServiceJson(id, {.connected = true}, t);
  for (auto key : {"deviceId", "etag", "deviceEtag", "status", "connectionState", "version", "tags",
                   "properties", "authenticationType", "x509Thumbprint", "modelId", "capabilities",
                   "cloudToDeviceMessageCount", "lastActivityTime"}) {
    EXPECT_TRUE(o.contains(key)) << key;
  }
  EXPECT_EQ(o["connectionState"], "Connected");
  EXPECT_FALSE(o.contains("moduleId"));
  id.module_id = "m1";
  EXPECT_EQ(TwinToServiceJson(id, {}, t)["moduleId"], "m1");
}

}  // namespace
}  // namespace orrery::hub
