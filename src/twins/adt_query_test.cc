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

 protected:
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
  // Filtering on the target only: the walk starts there and follows the JOIN backwards.
  g_.scans = 0;
  EXPECT_EQ(Keyed("SELECT source FROM DIGITALTWINS source JOIN target RELATED source.contains "
                  "WHERE target.$dtId = 'room3'"),
            Set{R"({"source":"floor2"})"});
  EXPECT_EQ(Keyed("SELECT B, F, R FROM DIGITALTWINS B JOIN F RELATED B.contains JOIN R RELATED "
                  "F.contains JOIN S RELATED R.hasSensor WHERE S.$dtId = 'sensor2'"),
            Set{R"({"B":"building1","F":"floor1","R":"room2"})"});
  EXPECT_EQ(Keyed("SELECT S FROM DIGITALTWINS F JOIN R RELATED F.contains JOIN S RELATED "
                  "R.hasSensor WHERE IS_OF_MODEL(R, 'dtmi:test:Room;1', exact) AND "
                  "F.name = 'Ground'"),
            (Set{R"({"S":"sensor1"})", R"({"S":"sensor2"})", R"({"S":"sensor3"})"}));
  EXPECT_EQ(g_.scans, 0);
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

TEST_F(AdtQueryTest, PagingResumesWhereThePageEnded) {
  for (const char* text : {"SELECT * FROM DIGITALTWINS", "SELECT * FROM RELATIONSHIPS",
                           "SELECT T, CT, R FROM DIGITALTWINS T JOIN CT RELATED T.contains R",
                           "SELECT A, B FROM DIGITALTWINS MATCH (A)-[]-(B)",
                           "SELECT X FROM DIGITALTWINS MATCH (B)-[*..3]->(X) WHERE IS_OF_MODEL(B, "
                           "'dtmi:test:Space;1')"}) {
    std::vector<json::value> whole = All(text);
    ASSERT_FALSE(whole.empty()) << text;
    for (uint64_t page : {1, 2, 3})
      EXPECT_EQ(All(text, page), whole) << text << " / " << page;
  }
  auto q = AdtQuery::Parse("SELECT * FROM DIGITALTWINS");
  ASSERT_TRUE(q);
  auto p1 = q->Execute(g_, {4, ""});
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->rows.size(), 4u);
  EXPECT_FALSE(p1->continuation.empty());
  EXPECT_GT(p1->query_charge(), 0);
  auto p2 = q->Execute(g_, {100, p1->continuation});
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->rows.size(), 5u);
  EXPECT_TRUE(p2->continuation.empty());
  EXPECT_EQ(p2->rows[0].as_object().at("$dtId"), "room2");
  // TOP bounds every page together.
  EXPECT_EQ(All("SELECT TOP(5) FROM DIGITALTWINS", 2).size(), 5u);
  EXPECT_EQ(All("SELECT TOP(2) FROM DIGITALTWINS", 2).size(), 2u);
  // Tokens of other queries, or not tokens at all.
  auto other = AdtQuery::Parse("SELECT * FROM DIGITALTWINS T");
  ASSERT_TRUE(other);
  auto e1 = other->Execute(g_, {10, p1->continuation});
  ASSERT_FALSE(e1);
  EXPECT_EQ(e1.error().code(), query::Errc::kInvalidQuery);
  for (const char* bad : {"x", "adtq1.zz", "adtq1.7b7d", "adtq1."}) {
    auto e = q->Execute(g_, {10, bad});
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code(), query::Errc::kInvalidQuery);
  }
}

TEST_F(AdtQueryTest, Limits) {
  std::string pad(8000 - std::string("SELECT * FROM DIGITALTWINS WHERE name = ''").size(), 'x');
  EXPECT_TRUE(AdtQuery::Parse("SELECT * FROM DIGITALTWINS WHERE name = '" + pad + "'"));
  EXPECT_EQ(Fails("SELECT * FROM DIGITALTWINS WHERE name = '" + pad + "x'").code(),
            query::Errc::kLimitExceeded);
  // Characters, not bytes.
  std::string wide;
  for (int i = 0; i < 3000; ++i)
    wide += "é";
  EXPECT_TRUE(AdtQuery::Parse("SELECT * FROM DIGITALTWINS WHERE name = '" + wide + "'"));

  std::string joins = "SELECT T0 FROM DIGITALTWINS T0";
  for (int i = 1; i <= 5; ++i) {
    joins += " JOIN T" + std::to_string(i) + " RELATED T" + std::to_string(i - 1) + ".contains";
  }
  EXPECT_TRUE(AdtQuery::Parse(joins));
  Error e = Fails(joins + " JOIN T6 RELATED T5.contains");
  EXPECT_EQ(e.code(), query::Errc::kLimitExceeded);
  EXPECT_NE(e.message().find("JOIN"), std::string::npos) << e.message();

  auto in_list = [](int n) {
    std::string s = "SELECT * FROM DIGITALTWINS WHERE $dtId IN [";
    for (int i = 0; i < n; ++i)
      s += (i ? ", '" : "'") + std::to_string(i) + "'";
    return s + "]";
  };
  EXPECT_TRUE(AdtQuery::Parse(in_list(50)));
  EXPECT_EQ(Fails(in_list(51)).code(), query::Errc::kLimitExceeded);

  auto and_or = [](int n) {
    std::string s = "SELECT * FROM DIGITALTWINS WHERE level = 0";
    for (int i = 0; i < n; ++i)
      s += (i % 2 ? " AND level = " : " OR level = ") + std::to_string(i);
    return s;
  };
  EXPECT_TRUE(AdtQuery::Parse(and_or(50)));
  EXPECT_EQ(Fails(and_or(51)).code(), query::Errc::kLimitExceeded);

  EXPECT_TRUE(AdtQuery::Parse("SELECT TOP(10000) FROM DIGITALTWINS"));
  EXPECT_EQ(Fails("SELECT TOP(10001) FROM DIGITALTWINS").code(), query::Errc::kLimitExceeded);
  EXPECT_EQ(Fails("SELECT TOP(-1) FROM DIGITALTWINS").code(), query::Errc::kSyntax);
  EXPECT_TRUE(AdtQuery::Parse("SELECT A FROM DIGITALTWINS MATCH (A)-[*10]-(B)"));

  std::string deep = "SELECT * FROM DIGITALTWINS WHERE " + std::string(200, '(') + "1" +
                     std::string(200, ')') + " = 1";
  EXPECT_EQ(Fails(deep).code(), query::Errc::kLimitExceeded);

  AdtQueryLimits tight;
  tight.max_joins = 1;
  EXPECT_FALSE(
      AdtQuery::Parse("SELECT C FROM DIGITALTWINS A JOIN B RELATED A.x JOIN C RELATED "
                      "B.x",
                      tight));
}

// Every documented example parses, or is listed here with the reason it does not.
TEST(AdtQueryExamples, EveryDocumentedExampleParses) {
  const std::filesystem::path file = "/work/shared/data/adt-queries/query-examples.json";
  if (!std::filesystem::exists(file)) {
    GTEST_SKIP() << file << " is absent: the documented examples are not checked";
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  json::value doc = json::parse(text.str());
  // id → why it is not a query Orrery (or, as printed, ADT) accepts.
  const std::map<std::string, std::string> kUnsupported = {
      {"FromNegativeExample", "a sub-query in FROM: the reference shows it as what ADT refuses"},
      {"MatchNameAllExample", "invalid as printed: '(Building-[]-(Sensor)' misses a ')'"},
      {"MatchVariableExample",
       "invalid as printed: 'SELECT Floor,Cafe, Rel DIGITALTWINS' misses FROM"},
      {"IsStringExample", "invalid as printed: 'DIGITIALTWINS' is misspelt"},
      {"QueryByProperty4", "a template: T.<propertyName>.<mapKey> has placeholders"},
      {"SelectCount2", "two statements run together (SELECT COUNT() … SELECT COUNT() …)"},
      {"SelectTop", "a template: 'WHERE ...' has a placeholder"},
      {"INOperatorWithout", "a query parameter (@buildingId): the SDK samples substitute it first"},
      {"INOperatorWith", "invalid as printed: IN [..., ..'floorn'] is an elided list"},
      {"OtherExamples1",
       "invalid as printed: 'has.role' names the relationship, not a collection (no alias given)"},
  };
  int parsed = 0, known = 0;
  for (const json::value& v : doc.as_array()) {
    const json::object& ex = v.as_object();
    if (ex.at("kind").as_string() != "example") continue;
    std::string id(ex.at("id").as_string());
    std::string query(ex.at("query").as_string());
    auto q = AdtQuery::Parse(query);
    auto it = kUnsupported.find(id);
    if (it != kUnsupported.end()) {
      EXPECT_FALSE(q) << id << " now parses; take it off the list: " << query;
      ++known;
      continue;
    }
    EXPECT_TRUE(q) << id << ": " << query << "\n  " << (q ? "" : q.error().message());
    parsed += q ? 1 : 0;
  }
  std::printf("ADT examples: %d parse, %d listed as unsupported\n", parsed, known);
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

// A MemoryGraph with a property "index" as loose as GraphView allows: every twin that has the
// property at all (the executor must still evaluate the condition), counted honestly, and the
// model index's counts.
class IndexedGraph : public MemoryGraph {
 public:
  std::optional<size_t> CountTwinsOfModel(std::string_view model, bool exact) const override {
    size_t n = 0;
    for (const auto& [id, t] : twins_)
      n += IsOfModel(t.at("$metadata").at("$model").as_string(), model, exact);
    return n;
  }
  bool ForEachTwinByProperty(const PropertyFilter& f, const Visit& visit) const override {
    ++index_scans;
    for (const auto& [id, t] : twins_)
      if (t.contains(f.name) && !visit(t)) break;
    return true;
  }
  std::optional<size_t> CountTwinsByProperty(const PropertyFilter& f, size_t cap) const override {
    size_t n = 0;
    for (const auto& [id, t] : twins_)
      n += t.contains(f.name);
    return std::min(n, cap);
  }
  mutable int index_scans = 0;
};

std::vector<json::value> Rows(const GraphView& g, std::string_view text, uint64_t page) {
  auto q = AdtQuery::Parse(text);
  EXPECT_TRUE(q) << text << ": " << (q ? "" : q.error().message());
  std::vector<json::value> rows;
  if (!q) return rows;
  AdtPageRequest req{page, ""};
  for (int i = 0; i < 1000; ++i) {
    auto p = q->Execute(g, req);
    EXPECT_TRUE(p) << text << ": " << (p ? "" : p.error().message());
    if (!p) break;
    rows.insert(rows.end(), p->rows.begin(), p->rows.end());
    if (p->continuation.empty()) break;
    req.continuation = p->continuation;
  }
  return rows;
}

TEST_F(AdtQueryTest, PropertyConditionsUseTheIndexAndAnswerAsAScan) {
  IndexedGraph ix;
  // The fixture's graph, copied into the indexed one.
  g_.ForEachTwin([&](const json::object& t) {
    json::object props = t;
    std::string id(t.at("$dtId").as_string());
    std::string model(t.at("$metadata").at("$model").as_string());
    ix.AddTwin(id, model, std::move(props));
    return true;
  });
  g_.ForEachRelationship([&](const json::object& r) {
    ix.AddRel(std::string(r.at("$sourceId").as_string()),
              std::string(r.at("$relationshipId").as_string()),
              std::string(r.at("$relationshipName").as_string()),
              std::string(r.at("$targetId").as_string()), r);
    return true;
  });
  ix.Extends(kRoom, kSpace);
  ix.Extends(kFloor, kSpace);
  struct Case {
    const char* text;
    bool indexed;  // the start is served by the property index
  };
  const Case cases[] = {
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature = 25", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature > 21.5", true},
      {"SELECT * FROM DIGITALTWINS T WHERE 22 <= T.temperature AND T.temperature < 60", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature BETWEEN 21 AND 55", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature IN [22, 25.0, 'x']", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature = null", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature > -1", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature = '25'", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.name >= 'F'", true},
      {"SELECT * FROM DIGITALTWINS T WHERE STARTSWITH(T.name, 'Lo')", true},
      {"SELECT * FROM DIGITALTWINS T WHERE T.active = true", true},
      {"SELECT * FROM DIGITALTWINS WHERE owner = 'John'", true},
      {"SELECT * FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Room;1') AND owner != 'John'",
       false},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature > 20 OR T.name = 'HQ'", false},
      {"SELECT * FROM DIGITALTWINS T WHERE T.comfort.target = 21", false},
      {"SELECT * FROM DIGITALTWINS T WHERE T.temperature != 25", false},
      {"SELECT T.name FROM DIGITALTWINS T WHERE T.level >= 1 AND IS_OF_MODEL(T, "
       "'dtmi:test:Space;1')",
       true},
      {"SELECT COUNT() FROM DIGITALTWINS T WHERE T.temperature >= 0", true},
      {"SELECT TOP(2) * FROM DIGITALTWINS T WHERE T.temperature >= 0", true},
      {"SELECT R, S FROM DIGITALTWINS R JOIN S RELATED R.hasSensor WHERE S.temperature > 50", true},
      // The cheaper start by the view's counts: 2 floors against 3 twins with an owner …
      {"SELECT F, R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE IS_OF_MODEL(F, "
       "'dtmi:test:Floor;1') AND R.owner = 'Anil'",
       false},
      // … 5 spaces against 3.
      {"SELECT F, R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE IS_OF_MODEL(F, "
       "'dtmi:test:Space;1') AND R.owner = 'Anil'",
       true},
      {"SELECT B, S FROM DIGITALTWINS MATCH (B)-[:contains*2]->(R)-[:hasSensor]->(S) WHERE "
       "S.active = false",
       true},
      {"SELECT R, S FROM DIGITALTWINS MATCH (R)-[H:hasSensor]->(S) WHERE H.role = 'primary' AND "
       "R.temperature < 30",
       true},
  };
  for (const Case& c : cases) {
    for (uint64_t page : {1000, 1}) {
      ix.index_scans = 0;
      ix.scans = 0;
      auto scanned = Rows(g_, c.text, page);
      auto indexed = Rows(ix, c.text, page);
      EXPECT_EQ(json::serialize(json::value_from(indexed)),
                json::serialize(json::value_from(scanned)))
          << c.text << " (pages of " << page << ")";
      EXPECT_EQ(ix.index_scans > 0, c.indexed) << c.text;
      if (c.indexed) {
        EXPECT_EQ(ix.scans, 0) << c.text;
      }
    }
  }
}

}  // namespace
}  // namespace orrery::twins
