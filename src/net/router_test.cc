#include "net/http.h"

#include <gtest/gtest.h>

namespace orrery::net {
namespace {

HttpHandler Tag(std::string* out, std::string tag) {
  return [out, tag](HttpRequest&, Responder) { *out = tag; };
}

TEST(RouterTest, CapturesDecodeAndLiteralsWin) {
  Router r;
  std::string hit;
  r.Add("GET", "/devices/{id}", Tag(&hit, "device"));
  r.Add("GET", "/devices/query", Tag(&hit, "query-get"));
  r.Add("POST", "/devices/query", Tag(&hit, "query"));
  r.Add("GET", "/devices/{id}/modules/{mid}", Tag(&hit, "module"));
  r.Add("GET", "/files/{*rest}", Tag(&hit, "files"));

  auto m = r.Find("GET", "/devices/dev%201");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.params["id"], "dev 1");
  EXPECT_EQ(m.route->segments[1], "{id}");

  m = r.Find("POST", "/devices/query");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->segments[1], "query");
  m = r.Find("GET", "/devices/query");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->segments[1], "query");

  m = r.Find("GET", "/devices/d1/modules/m%2F1/");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.params["id"], "d1");
  EXPECT_EQ(m.params["mid"], "m/1");

  m = r.Find("GET", "/files/a/b/c");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.params["rest"], "a/b/c");
}

TEST(RouterTest, MethodMismatchAndMisses) {
  Router r;
  std::string hit;
  r.Add("GET", "/devices/", Tag(&hit, "list"));
  EXPECT_TRUE(r.Find("GET", "/devices").route);
  EXPECT_TRUE(r.Find("GET", "/devices/").route);
  auto m = r.Find("DELETE", "/devices");
  EXPECT_FALSE(m.route);
  EXPECT_TRUE(m.other_method);
  m = r.Find("GET", "/nothing");
  EXPECT_FALSE(m.route);
  EXPECT_FALSE(m.other_method);
  EXPECT_FALSE(r.Find("GET", "/devices/%zz").route);
}

TEST(RouterTest, ParseTargetDecodesQuery) {
  std::string path;
  std::vector<std::pair<std::string, std::string>> q;
  ParseTarget("/devices/x/messages/devicebound/tok?api-version=2021-04-12&reject", path, q);
  EXPECT_EQ(path, "/devices/x/messages/devicebound/tok");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"api-version", "2021-04-12"}));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"reject", ""}));
}

TEST(HttpTypesTest, JsonErrorHasIotHubShape) {
  auto r = HttpResponse::JsonError(404, "DeviceNotFound", "Device dev1 not found");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers.Get("content-type"), "application/json; charset=utf-8");
  EXPECT_NE(r.body.find("\"Message\":\"ErrorCode:DeviceNotFound;Device dev1 not found\""),
            std::string::npos)
      << r.body;
}

}  // namespace
}  // namespace orrery::net
