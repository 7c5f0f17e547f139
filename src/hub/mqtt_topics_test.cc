#include "hub/mqtt_topics.h"

#include <gtest/gtest.h>

namespace orrery::hub::mqtt_topics {
namespace {

TEST(MqttTopicsTest, UserNameOfTheSdk) {
  // Captured from azure-iot-device 1.18.4 (wire contract §2.2).
  auto u = ParseUserName(
      "localhost:8884/dev1/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&"
      "DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "localhost:8884");
  EXPECT_EQ(u->client_id, "dev1");
  EXPECT_EQ(u->api_version, "2021-04-12");
  EXPECT_EQ(u->model_id, "dtmi:com:example:Thermostat;1");
  EXPECT_EQ(u->client_type, "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)");
  auto m = ParseUserName("hub.example/dev1/mod1/?api-version=2021-04-12");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->client_id, "dev1/mod1");
  EXPECT_EQ(SplitClientId(m->client_id),
            std::make_pair(std::string_view("dev1"), std::string_view("mod1")));
  // Plain MQTT user names are not hub user names.
  EXPECT_FALSE(ParseUserName("alice"));
  EXPECT_FALSE(ParseUserName("host/dev1"));
  EXPECT_FALSE(ParseUserName("host/dev1/?foo=bar"));
  EXPECT_FALSE(ParseUserName("/?api-version=1"));
}

TEST(MqttTopicsTest, TelemetryTopicsAndBags) {
  auto t = ClassifyPublish(
      "devices/dev1/messages/events/%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&"
      "%24.ce=utf-8&alert=yes%26no&%24.sub=comp1",
      "dev1", "");
  ASSERT_EQ(t.kind, Kind::kTelemetry);
  auto m = TelemetryFromBag(t.bag, "{}");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->system.message_id, "mid-1");
  EXPECT_EQ(m->system.correlation_id, "cid 1");
  EXPECT_EQ(m->system.content_type, "application/json");
  EXPECT_EQ(m->system.content_encoding, "utf-8");
  ASSERT_EQ(m->properties.size(), 2u);
  EXPECT_EQ(m->properties[0], std::make_pair(std::string("alert"), std::string("yes&no")));
  EXPECT_EQ(m->properties[1], std::make_pair(std::string("dt-subject"), std::string("comp1")));
  EXPECT_EQ(ClassifyPublish("devices/dev1/messages/events/", "dev1", "").kind, Kind::kTelemetry);
  EXPECT_EQ(ClassifyPublish("devices/dev1/messages/events", "dev1", "").kind, Kind::kTelemetry);
  // Module output events end with an extra '/'.
  auto mod =
      ClassifyPublish("devices/edge/modules/m1/messages/events/%24.on=output1&a=b/", "edge", "m1");
  ASSERT_EQ(mod.kind, Kind::kTelemetry);
  EXPECT_EQ(mod.bag, "%24.on=output1&a=b");
  // Another device's topic, or a module publishing on the device's topic, is refused.
  EXPECT_EQ(ClassifyPublish("devices/dev2/messages/events/", "dev1", "").kind, Kind::kOther);
  EXPECT_EQ(ClassifyPublish("devices/edge/messages/events/", "edge", "m1").kind, Kind::kOther);
  EXPECT_EQ(ClassifyPublish("devices/dev1/messages/eventsX", "dev1", "").kind, Kind::kOther);
  EXPECT_FALSE(TelemetryFromBag("a=%zz", ""));
  EXPECT_FALSE(TelemetryFromBag("%24.exp=yesterday", ""));
  auto exp = TelemetryFromBag("%24.exp=2026-01-02T03%3A04%3A05.000Z", "");
  ASSERT_TRUE(exp);
  EXPECT_EQ(exp->system.expiry_time_ms, 1767323045000);
}

TEST(MqttTopicsTest, TwinAndMethodTopics) {
  auto get = ClassifyPublish("$iothub/twin/GET/?$rid=42", "d", "");
  EXPECT_EQ(get.kind, Kind::kTwinGet);
  EXPECT_EQ(get.request_id, "42");
  EXPECT_EQ(ClassifyPublish("$iothub/twin/GET/", "d", "").kind, Kind::kOther);  // no $rid
  auto patch = ClassifyPublish("$iothub/twin/PATCH/properties/reported/?$rid=a-b", "d", "");
  EXPECT_EQ(patch.kind, Kind::kTwinPatchReported);
  EXPECT_EQ(patch.request_id, "a-b");
  auto res = ClassifyPublish("$iothub/methods/res/201/?$rid=7", "d", "");
  EXPECT_EQ(res.kind, Kind::kMethodResponse);
  EXPECT_EQ(res.status, 201);
  EXPECT_EQ(ClassifyPublish("$iothub/methods/res/abc/?$rid=7", "d", "").kind, Kind::kOther);
  EXPECT_EQ(ClassifyPublish("$iothub/methods/POST/x/?$rid=7", "d", "").kind, Kind::kOther);
  EXPECT_EQ(TwinResponseTopic(204, "r1", 5), "$iothub/twin/res/204/?$rid=r1&$version=5");
  EXPECT_EQ(DesiredTopic(3), "$iothub/twin/PATCH/properties/desired/?$version=3");
  EXPECT_EQ(MethodTopic("reboot", "1f"), "$iothub/methods/POST/reboot/?$rid=1f");
}

TEST(MqttTopicsTest, SubscriptionsADeviceMayMake) {
  EXPECT_TRUE(DeviceMaySubscribe("devices/d1/messages/devicebound/#", "d1", ""));
  EXPECT_TRUE(DeviceMaySubscribe("$iothub/twin/res/#", "d1", ""));
  EXPECT_TRUE(DeviceMaySubscribe("$iothub/methods/POST/#", "d1", ""));
  EXPECT_TRUE(DeviceMaySubscribe("$iothub/twin/PATCH/properties/desired/#", "d1", ""));
  EXPECT_TRUE(DeviceMaySubscribe("devices/d1/modules/m/inputs/#", "d1", "m"));
  EXPECT_FALSE(DeviceMaySubscribe("devices/d2/messages/devicebound/#", "d1", ""));
  EXPECT_FALSE(DeviceMaySubscribe("devices/+/messages/devicebound/#", "d1", ""));
  EXPECT_FALSE(DeviceMaySubscribe("#", "d1", ""));
  EXPECT_FALSE(DeviceMaySubscribe("devices/d1/messages/events/#", "d1", ""));
  EXPECT_TRUE(IsHubTopic("devices/x"));
  EXPECT_TRUE(IsHubTopic("$iothub/twin/res/#"));
  EXPECT_FALSE(IsHubTopic("#"));
  EXPECT_FALSE(IsHubTopic("sensors/devices/1"));
}

TEST(MqttTopicsTest, C2dTopicEncodesProperties) {
  C2dMessage m;
  m.message_id = "m1";
  m.correlation_id = "c/1";
  m.content_type = "application/json";
  m.properties = {{"prop 1", "v&1"}, {"k", ""}};
  EXPECT_EQ(C2dTopic("dev1", m),
            "devices/dev1/messages/devicebound/%24.mid=m1&%24.cid=c%2F1&"
            "%24.ct=application%2Fjson&prop%201=v%261&k=");
  EXPECT_EQ(C2dTopic("dev1", C2dMessage{}), "devices/dev1/messages/devicebound/");
  // What the device SDK decodes (§2.5): no literal '/' or '&' inside the bag.
  auto bag = ParsePropertyBag("%24.mid=m1&%24.cid=c%2F1&%24.ct=application%2Fjson&prop%201=v%261");
  ASSERT_TRUE(bag);
  EXPECT_EQ((*bag)[3], std::make_pair(std::string("prop 1"), std::string("v&1")));
}

}  // namespace
}  // namespace orrery::hub::mqtt_topics
