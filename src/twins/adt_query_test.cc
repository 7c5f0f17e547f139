// The ADT query dialect over an in-memory GraphView: one test group per construct, over a
// small building (building → floors → rooms → sensors), and every documented example of
// /work/shared/data/adt-queries/query-examples.json.
#include "twins/adt_query.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "query/errc.h"

namespace orrery::twins {
namespace {

namespace json = boost::json;

// GraphView over plain maps. Counts what it is asked, to check that lookups are used.
class MemoryGraph : public GraphView {
 public:
  void AddTwin(std::string id, std::string model, json::object props = {}) {
    props["$dtId"] = id;
    props["$etag"] = "W/\"1\"";
    props["$metadata"] = json::object{{"$model", model}};
    twins_[id] = std::move(props);
  }
  void AddRel(std::string src, std::string id, std::string name, std::string target,
              json::object props = {}) {
    props["$relationshipId"] = id;
    props["$sourceId"] = src;
    props["$relationshipName"] = name;
    props["$targetId"] = target;
    rels_[{src, id}] = std::move(props);
  }
  void Extends(std::string model, std::string base) { bases_[model].insert(base); }

  void ForEachTwin(const Visit& visit) const override {
    ++scans;
    for (const auto& [id, t] : twins_)
      if (!visit(t)) return;
  }
  void ForEachTwinOfModel(std::string_view model_id, bool exact,
                          const Visit& visit) const override {
    ++model_scans;
    for (const auto& [id, t] : twins_) {
      if (IsOfModel(t.at("$metadata").at("$model").as_string(), model_id, exact) && !visit(t)) {
        return;
      }
    }
  }
  const json::object* Twin(std::string_view id) const override {
    ++lookups;
    auto it = twins_.find(std::string(id));
    return it == twins_.end() ? nullptr : &it->second;
  }
  void ForEachRelationship(const Visit& visit) const override {
    for (const auto& [k, r] : rels_)
      if (!visit(r)) return;
  }
  void ForEachOutgoing(std::string_view source, std::string_view name,
                       const Visit& visit) const override {
    for (const auto& [k, r] : rels_) {
      if (k.first == source && (name.empty() || r.at("$relationshipName").as_string() == name) &&
          !visit(r)) {
        return;
      }
    }
  }
  void ForEachIncoming(std::string_view target, std::string_view name,
                       const Visit& visit) const override {
    for (const auto& [k, r] : rels_) {
      if (r.at("$targetId").as_string() == target &&
          (name.empty() || r.at("$relationshipName").as_string() == name) && !visit(r)) {
        return;
      }
    }
  }
  bool IsOfModel(std::string_view twin_model, std::string_view model_id,
                 bool exact) const override {
    if (twin_model == model_id) return true;
    if (exact) return false;
    auto it = bases_.find(std::string(twin_model));
    if (it == bases_.end()) return false;
    for (const std::string& b : it->second)
      if (IsOfModel(b, model_id, false)) return true;
    return false;
  }

  mutable int scans = 0, model_scans = 0, lookups = 0;

 private:
  std::map<std::string, json::object> twins_;
  std::map<std::pair<std::string, std::string>, json::object> rels_;
  std::map<std::string, std::set<std::string>> bases_;
};

constexpr const char* kBuilding = "dtmi:test:Building;1";
constexpr const char* kFloor = "dtmi:test:Floor;1";
constexpr const char* kRoom = "dtmi:test:Room;1";
constexpr const char* kSpace = "dtmi:test:Space;1";
constexpr const char* kSensor = "dtmi:test:Sensor;1";

class AdtQueryTest : public ::testing::Test {
 protected:
  AdtQueryTest() {
    g_.Extends(kRoom, kSpace);
    g_.Extends(kFloor, kSpace);
    g_.AddTwin("building1", kBuilding, {{"name", "HQ"}, {"tags", json::object{{"red", true}}}});
    g_.AddTwin("floor1", kFloor, {{"name", "Ground"}, {"level", 0}});
    g_.AddTwin("floor2", kFloor, {{"name", "First"}, {"level", 1}});
    g_.AddTwin("room1", kRoom,
               {{"name", "Lobby"},
                {"temperature", 21.5},
                {"owner", "John"},
                {"floor_number", json::array{0, 2}},
                {"comfort", json::object{{"target", 21}}}});
    g_.AddTwin("room2", kRoom, {{"name", "Cafe"}, {"temperature", 25}, {"owner", "Anil"}});
    g_.AddTwin("room3", kRoom,
               {{"name", "Office"},
                {"temperature", nullptr},
                {"owner", "Bailey"},
                {"HasTemperature", false}});
    g_.AddTwin("sensor1", kSensor, {{"temperature", 22}, {"active", true}});
    g_.AddTwin("sensor2", kSensor, {{"temperature", 55}, {"active", false}});
    g_.AddTwin("sensor3", kSensor, {{"temperature", 60}});
    g_.AddRel("building1", "b-f1", "contains", "floor1");
    g_.AddRel("building1", "b-f2", "contains", "floor2");
    g_.AddRel("floor1", "f1-r1", "contains", "room1", {{"since", 2020}});
    g_.AddRel("floor1", "f1-r2", "contains", "room2", {{"since", 2021}});
    g_.AddRel("floor2", "f2-r3", "contains", "room3", {{"since", 2022}});
    g_.AddRel("room1", "r1-s1", "hasSensor", "sensor1", {{"role", "primary"}});
    g_.AddRel("room2", "r2-s2", "hasSensor", "sensor2", {{"role", "primary"}});
    g_.AddRel("room2", "r2-s3", "hasSensor", "sensor3", {{"role", "backup"}});
    g_.AddRel("sensor3", "s3-f2", "isAssociatedWith", "floor2");
  }

  // Every row of the query, following continuations with pages of `page` rows.
  std::vector<json::value> All(std::string_view text, uint64_t page = 1000) {
    auto q = AdtQuery::Parse(text);
    EXPECT_TRUE(q) << text << ": " << (q ? "" : q.error().message());
    if (!q) return {};
    std::vector<json::value> rows;
    AdtPageRequest req{page, ""};
    for (int i = 0; i < 1000; ++i) {
      auto p = q->Execute(g_, req);
      EXPECT_TRUE(p) << (p ? "" : p.error().message());
      if (!p) break;
      EXPECT_LE(p->rows.size(), page);
      rows.insert(rows.end(), p->rows.begin(), p->rows.end());
      if (p->continuation.empty()) break;
      req.continuation = p->continuation;
    }
    return rows;
  }
  // The $dtId of each row (SELECT * over twins), sorted.
  std::multiset<std::string> Ids(std::string_view text) {
    std::multiset<std::string> out;
    for (const json::value& r : All(text)) {
      const json::value* id = r.as_object().if_contains("$dtId");
      out.insert(id != nullptr ? std::string(id->as_string()) : json::serialize(r));
    }
    return out;
  }
  // Each row with every twin or relationship value shortened to its id: {"T":"room1",...}.
  std::multiset<std::string> Keyed(std::string_view text, uint64_t page = 1000) {
    std::multiset<std::string> out;
    for (const json::value& r : All(text, page)) {
      json::object o = r.as_object();
      for (auto& kv : o) {
        if (kv.value().is_object()) {
          const json::object& d = kv.value().as_object();
          if (d.contains("$dtId")) {
            kv.value() = d.at("$dtId");
          } else if (d.contains("$relationshipId")) {
            kv.value() = d.at("$relationshipId");
          }
        }
      }
      out.insert(json::serialize(o));
    }
    return out;
  }
  Error Fails(std::string_view text) {
    auto q = AdtQuery::Parse(text);
    EXPECT_FALSE(q) << text;
    return q ? Error() : q.error();
  }

  MemoryGraph g_;
};

using Set = std::multiset<std::string>;

TEST_F(AdtQueryTest, SelectStarReturnsTheTwinsThemselves) {
  auto rows = All("SELECT * FROM DIGITALTWINS");
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[0].as_object().at("$dtId"), "building1");  // $dtId order
  EXPECT_EQ(rows[0].as_object().at("name"), "HQ");
  EXPECT_EQ(Ids("select * from digitaltwins T where T.$dtId = 'room1'"), Set{"room1"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE $dtId = 'room2'"), Set{"room2"});
}

TEST_F(AdtQueryTest, Comparisons) {
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.temperature > 50"),
            (Set{"sensor2", "sensor3"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.temperature >= 25"),
            (Set{"room2", "sensor2", "sensor3"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.temperature < 22"), Set{"room1"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.temperature <= 22"),
            (Set{"room1", "sensor1"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.temperature = 25"), Set{"room2"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.temperature != 25 AND T.temperature < 30"),
            (Set{"room1", "sensor1"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE NOT T.temperature <= 55"), Set{"sensor3"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE name = 'Cafe' OR level = 1"),
            (Set{"floor2", "room2"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.comfort.target = 21"), Set{"room1"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.$metadata.$model = 'dtmi:test:Floor;1'"),
            (Set{"floor1", "floor2"}));
}

TEST_F(AdtQueryTest, InAndNin) {
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS DT WHERE DT.owner IN ['John', 'Anil', 'Alex']"),
            (Set{"room1", "room2"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS DT WHERE DT.owner NIN ['John', 'Anil']"), Set{"room3"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE T.$dtId in ['room3', 'floor1', 'nope']"),
            (Set{"floor1", "room3"}));
}

TEST_F(AdtQueryTest, Functions) {
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE IS_DEFINED(owner)"),
            (Set{"room1", "room2", "room3"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE IS_DEFINED(tags.red)"), Set{"building1"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE IS_NULL(T.temperature)"), Set{"room3"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE IS_BOOL(HasTemperature) AND "
                "HasTemperature != true"),
            Set{"room3"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE IS_NUMBER(T.level) AND T.level != 0"),
            Set{"floor2"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE IS_STRING(T.owner) AND T.owner != 'John'"),
            (Set{"room2", "room3"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE IS_OBJECT(comfort)"), Set{"room1"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE IS_PRIMITIVE(level)"), (Set{"floor1", "floor2"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE STARTSWITH(T.$dtId, 'floor')"),
            (Set{"floor1", "floor2"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE ENDSWITH(T.$dtId, '3')"),
            (Set{"room3", "sensor3"}));
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE CONTAINS(T.name, 'ff')"), Set{"room3"});
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE ARRAY_CONTAINS(T.floor_number, 2)"),
            Set{"room1"});
}

TEST_F(AdtQueryTest, IsOfModelUsesTheModelIndex) {
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Room;1')"),
            (Set{"room1", "room2", "room3"}));
  EXPECT_EQ(g_.scans, 0);
  EXPECT_EQ(g_.model_scans, 1);
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS DT WHERE IS_OF_MODEL(DT, 'dtmi:test:Space;1')"),
            (Set{"floor1", "floor2", "room1", "room2", "room3"}));
  EXPECT_TRUE(
      Ids("SELECT * FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Space;1', exact)").empty());
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS DT WHERE IS_OF_MODEL(DT, 'dtmi:test:Room;1', exact) "
                "AND DT.temperature > 22"),
            Set{"room2"});
  // Not a top-level conjunct: evaluated per twin, still correct.
  EXPECT_EQ(Ids("SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:test:Floor;1') OR "
                "T.$dtId = 'sensor1'"),
            (Set{"floor1", "floor2", "sensor1"}));
  EXPECT_EQ(g_.scans, 1);
}

TEST_F(AdtQueryTest, DtIdEqualityIsALookup) {
  auto q = AdtQuery::Parse("SELECT * FROM DIGITALTWINS T WHERE T.$dtId IN ['room2', 'floor1']");
  ASSERT_TRUE(q);
  auto p = q->Execute(g_);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->rows.size(), 2u);
  EXPECT_EQ(g_.scans, 0);
  EXPECT_EQ(p->examined, 2u);
  EXPECT_EQ(p->query_charge(), 2.0);
}

TEST_F(AdtQueryTest, Projections) {
  EXPECT_EQ(Keyed("SELECT T.name FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:test:Floor;1')"),
            (Set{R"({"name":"Ground"})", R"({"name":"First"})"}));
  EXPECT_EQ(Keyed("SELECT T FROM DIGITALTWINS T WHERE T.$dtId = 'room1'"), Set{R"({"T":"room1"})"});
  EXPECT_EQ(Keyed("SELECT name, level AS lvl FROM DIGITALTWINS WHERE IS_DEFINED(level)"),
            (Set{R"({"name":"Ground","lvl":0})", R"({"name":"First","lvl":1})"}));
  // Undefined values are left out.
  EXPECT_EQ(Keyed("SELECT T.name, T.temperature FROM DIGITALTWINS T WHERE STARTSWITH(T.$dtId, "
                  "'sensor1')"),
            Set{R"({"temperature":22})"});
  EXPECT_EQ(
      Fails("SELECT T.name, U.name AS name FROM DIGITALTWINS T JOIN U RELATED T.contains").code(),
      query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT T.level + 1 FROM DIGITALTWINS T").code(), query::Errc::kInvalidQuery);
}

TEST_F(AdtQueryTest, CountAndTop) {
  EXPECT_EQ(Keyed("SELECT COUNT() FROM DIGITALTWINS"), Set{R"({"COUNT":9})"});
  EXPECT_EQ(Keyed("SELECT COUNT() FROM RELATIONSHIPS"), Set{R"({"COUNT":9})"});
  EXPECT_EQ(Keyed("SELECT COUNT() FROM DIGITALTWINS c WHERE IS_OF_MODEL('dtmi:test:Room;1') AND "
                  "c.temperature > 21"),
            Set{R"({"COUNT":2})"});
  EXPECT_EQ(Keyed("SELECT COUNT() FROM DIGITALTWINS WHERE name = 'none'"), Set{R"({"COUNT":0})"});
  EXPECT_EQ(All("SELECT TOP(5) FROM DIGITALTWINS").size(), 5u);
  EXPECT_EQ(All("SELECT TOP (2) * FROM DIGITALTWINS T WHERE IS_DEFINED(T.temperature)").size(), 2u);
  EXPECT_EQ(All("SELECT TOP(3) T.$dtId FROM DIGITALTWINS T", 2).size(), 3u);
  EXPECT_EQ(Fails("SELECT COUNT(), name FROM DIGITALTWINS").code(), query::Errc::kInvalidQuery);
}

TEST_F(AdtQueryTest, FromRelationships) {
  EXPECT_EQ(All("SELECT * FROM RELATIONSHIPS").size(), 9u);
  EXPECT_EQ(Keyed("SELECT R.$relationshipId FROM RELATIONSHIPS R WHERE R.$sourceId IN ['room2', "
                  "'floor2']"),
            (Set{R"({"$relationshipId":"f2-r3"})", R"({"$relationshipId":"r2-s2"})",
                 R"({"$relationshipId":"r2-s3"})"}));
  EXPECT_EQ(g_.scans, 0);
  EXPECT_EQ(Keyed("SELECT $targetId FROM RELATIONSHIPS WHERE $relationshipName = 'hasSensor' AND "
                  "role = 'backup'"),
            Set{R"({"$targetId":"sensor3"})"});
  EXPECT_EQ(Fails("SELECT * FROM RELATIONSHIPS R WHERE IS_OF_MODEL(R, 'dtmi:x;1')").code(),
            query::Errc::kInvalidQuery);
}

TEST_F(AdtQueryTest, Join) {
  EXPECT_EQ(Keyed("SELECT T, CT FROM DIGITALTWINS T JOIN CT RELATED T.contains WHERE T.$dtId = "
                  "'floor1'"),
            (Set{R"({"T":"floor1","CT":"room1"})", R"({"T":"floor1","CT":"room2"})"}));
  EXPECT_EQ(g_.scans, 0);
  // Five levels, WHERE on the deepest twin and on a relationship.
  EXPECT_EQ(Keyed("SELECT S FROM DIGITALTWINS B JOIN F RELATED B.contains JOIN R RELATED "
                  "F.contains JOIN S RELATED R.hasSensor WHERE B.$dtId = 'building1' AND "
                  "S.temperature > 50"),
            (Set{R"({"S":"sensor2"})", R"({"S":"sensor3"})"}));
  EXPECT_EQ(Keyed("SELECT R, S, E FROM DIGITALTWINS R JOIN S RELATED R.hasSensor E WHERE "
                  "E.role = 'backup'"),
            Set{R"({"R":"room2","S":"sensor3","E":"r2-s3"})"});
  EXPECT_EQ(Keyed("SELECT S.temperature, E.role AS r, R.name FROM DIGITALTWINS R JOIN S RELATED "
                  "R.hasSensor E WHERE R.$dtId = 'room2'"),
            (Set{R"({"temperature":55,"r":"primary","name":"Cafe"})",
                 R"({"temperature":60,"r":"backup","name":"Cafe"})"}));
  // Filtering on the target only: a scan, still right.
  EXPECT_EQ(Keyed("SELECT source FROM DIGITALTWINS source JOIN target RELATED source.contains "
                  "WHERE target.$dtId = 'room3'"),
            Set{R"({"source":"floor2"})"});
  // IS_OF_MODEL on a joined collection; JOIN from a joined collection.
  EXPECT_EQ(Keyed("SELECT R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId IN "
                  "['floor1', 'floor2'] AND IS_OF_MODEL(R, 'dtmi:test:Space;1') AND "
                  "R.temperature > 22"),
            Set{R"({"R":"room2"})"});
  EXPECT_EQ(Keyed("SELECT COUNT() FROM DIGITALTWINS F JOIN R RELATED F.contains JOIN S RELATED "
                  "R.hasSensor"),
            Set{R"({"COUNT":3})"});
  // SELECT * with JOIN: keyed by collection.
  EXPECT_EQ(Keyed("SELECT * FROM DIGITALTWINS T JOIN CT RELATED T.hasSensor X WHERE T.$dtId = "
                  "'room1'"),
            Set{R"({"T":"room1","CT":"sensor1","X":"r1-s1"})"});
  // Names that are not collections, and a JOIN from an unknown collection.
  EXPECT_EQ(Fails("SELECT device FROM DIGITALTWINS space JOIN device RELATED space.has WHERE "
                  "has.role = 'Operator'")
                .code(),
            query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT X FROM DIGITALTWINS T JOIN X RELATED Q.contains").code(),
            query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT T FROM DIGITALTWINS T JOIN T RELATED T.contains").code(),
            query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT T FROM RELATIONSHIPS T JOIN X RELATED T.contains").code(),
            query::Errc::kInvalidQuery);
}

TEST_F(AdtQueryTest, MatchDirections) {
  EXPECT_EQ(Keyed("SELECT F, R FROM DIGITALTWINS MATCH (F)-[]->(R) WHERE F.$dtId = 'floor1'"),
            (Set{R"({"F":"floor1","R":"room1"})", R"({"F":"floor1","R":"room2"})"}));
  EXPECT_EQ(Keyed("SELECT R, F FROM DIGITALTWINS MATCH (R)<-[]-(F) WHERE F.$dtId = 'floor2'"),
            Set{R"({"R":"room3","F":"floor2"})"});
  EXPECT_EQ(g_.scans, 0);  // started at F, the node with the $dtId conjunct
  // Either direction: floor2 contains room3, sensor3 isAssociatedWith floor2, building1 contains
  // it.
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (F)-[]-(X) WHERE F.$dtId = 'floor2'"),
            (Set{R"({"X":"room3"})", R"({"X":"sensor3"})", R"({"X":"building1"})"}));
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (F)-[:contains]-(X) WHERE f.$dtId = 'floor2'"),
            (Set{R"({"X":"room3"})", R"({"X":"building1"})"}));
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (F)-[:hasSensor|isAssociatedWith]-(X) WHERE "
                  "F.$dtId = 'floor2'"),
            Set{R"({"X":"sensor3"})"});
  // A relationship variable, and a condition on it.
  EXPECT_EQ(Keyed("SELECT R, S, E FROM DIGITALTWINS MATCH (R)-[E:hasSensor]->(S) WHERE "
                  "E.role = 'primary' AND S.temperature > 30"),
            Set{R"({"R":"room2","S":"sensor2","E":"r2-s2"})"});
  // No condition that could start the walk: a scan from the first node.
  EXPECT_EQ(Keyed("SELECT COUNT() FROM DIGITALTWINS MATCH (A)-[]->(B)"), Set{R"({"COUNT":9})"});
}

TEST_F(AdtQueryTest, MatchHops) {
  // building1 → floors (1) → rooms (2) → sensors (3).
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (B)-[*3]->(X) WHERE B.$dtId = 'building1'"),
            (Set{R"({"X":"sensor1"})", R"({"X":"sensor2"})", R"({"X":"sensor3"})"}));
  // *1..3: more than one hop, at most three.
  EXPECT_EQ(Keyed("SELECT COUNT() FROM DIGITALTWINS MATCH (B)-[*1..3]->(X) WHERE B.$dtId = "
                  "'building1'"),
            Set{R"({"COUNT":6})"});
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (B)-[:contains*..2]->(X) WHERE B.$dtId = "
                  "'building1'"),
            (Set{R"({"X":"floor1"})", R"({"X":"floor2"})", R"({"X":"room1"})", R"({"X":"room2"})",
                 R"({"X":"room3"})"}));
  // Incoming several hops: what contains room3, up to 2 levels.
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (R)<-[:contains*..2]-(X) WHERE R.$dtId = "
                  "'room3'"),
            (Set{R"({"X":"floor2"})", R"({"X":"building1"})"}));
  // Either way, each twin once, at its shortest distance (sensor3 is 1 hop from floor2).
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (F)-[*2]-(X) WHERE F.$dtId = 'floor2'"),
            (Set{R"({"X":"floor1"})", R"({"X":"room2"})"}));
  EXPECT_EQ(Fails("SELECT X FROM DIGITALTWINS MATCH (F)-[*11]-(X)").code(),
            query::Errc::kLimitExceeded);
  EXPECT_EQ(Fails("SELECT X FROM DIGITALTWINS MATCH (F)-[*3..2]-(X)").code(),
            query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT X FROM DIGITALTWINS MATCH (F)-[r*2]-(X)").code(),
            query::Errc::kInvalidQuery);
}

TEST_F(AdtQueryTest, MatchChains) {
  // room → sensor3 → floor2 ← building1, starting in the middle of the pattern.
  EXPECT_EQ(Keyed("SELECT R, S, F, B FROM DIGITALTWINS MATCH (R)-[:hasSensor]->(S)-[a:"
                  "isAssociatedWith]->(F)<-[:contains]-(B) WHERE S.$dtId = 'sensor3'"),
            Set{R"({"R":"room2","S":"sensor3","F":"floor2","B":"building1"})"});
  EXPECT_EQ(Keyed("SELECT F, R, S FROM DIGITALTWINS MATCH (F)-[r1:contains]->(R)-[r2]->(S) WHERE "
                  "IS_OF_MODEL(F, 'dtmi:test:Floor;1') AND r2.role = 'backup'"),
            Set{R"({"F":"floor1","R":"room2","S":"sensor3"})"});
  EXPECT_EQ(g_.scans, 0);
  // The documented form without a colon before names joined by '|'.
  EXPECT_EQ(Keyed("SELECT X FROM DIGITALTWINS MATCH (F)<-[has|contains*..3]-(X) WHERE F.$dtId = "
                  "'room1'"),
            (Set{R"({"X":"floor1"})", R"({"X":"building1"})"}));
  EXPECT_EQ(Fails("SELECT A FROM DIGITALTWINS MATCH (A)<-[]->(B)").code(), query::Errc::kSyntax);
  EXPECT_EQ(Fails("SELECT A FROM DIGITALTWINS T MATCH (A)-[]->(B)").code(),
            query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT A FROM DIGITALTWINS MATCH (A-[]-(B)").code(), query::Errc::kSyntax);
}

TEST_F(AdtQueryTest, Errors) {
  Error e = Fails("SELECT * FROM DIGITIALTWINS");
  EXPECT_EQ(e.code(), query::Errc::kSyntax);
  EXPECT_NE(e.message().find("line 1, column 15"), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("DIGITALTWINS or RELATIONSHIPS"), std::string::npos) << e.message();
  EXPECT_EQ(Fails("SELECT * FROM DIGITALTWINS WHERE IS_ENABLED(x)").code(),
            query::Errc::kUnknownFunction);
  EXPECT_EQ(Fails("SELECT * FROM DIGITALTWINS WHERE").code(), query::Errc::kSyntax);
  EXPECT_EQ(Fails("SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 5)").code(),
            query::Errc::kInvalidQuery);
  EXPECT_EQ(Fails("SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'm', approx)").code(),
            query::Errc::kInvalidQuery);
}

}  // namespace
}  // namespace orrery::twins
