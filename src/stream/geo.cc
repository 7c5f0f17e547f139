// The geospatial functions of the ASA dialect.
//
// Design note. Geometries are read from GeoJSON records or WKT strings into rings of
// (longitude, latitude) positions (ReadGeometry), bounded by kMaxGeoPositions. Distances between
// points are geodesic on the WGS 84 ellipsoid (Vincenty's inverse formula, which reproduces
// ASA's documented example to the millimetre). The relations (ST_WITHIN, ST_OVERLAPS,
// ST_INTERSECTS) are decided in the plane of longitude and latitude: an edge is the straight
// segment between its ends in those coordinates, not a great-circle arc, which is exact for the
// axis-aligned fences of ASA's examples and within metres for fences of a few kilometres, and
// no geometry may cross the antimeridian. A polygon's exterior ring follows ASA's rule of
// orientation: counter-clockwise (the interior on the left) encloses what it surrounds; a
// clockwise ring stands for the whole globe minus what it surrounds.
#include "stream/geo.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>
#include <string_view>

#include "base/strings.h"
#include "query/evaluator.h"

namespace orrery::stream::internal {

namespace {

namespace json = boost::json;
using query::Value;

constexpr double kPi = 3.14159265358979323846;

// ---- reading

bool Number(const json::value& v, double& out) {
  if (v.is_double()) {
    out = v.get_double();
  } else if (v.is_int64()) {
    out = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    out = static_cast<double>(v.get_uint64());
  } else {
    return false;
  }
  return std::isfinite(out);
}

bool Valid(LonLat p) {
  return p.lat >= -90 && p.lat <= 90 && p.lon >= -180 && p.lon <= 180;
}

bool Position(const json::value& v, LonLat& out) {
  if (!v.is_array() || v.get_array().size() < 2) return false;
  const auto& a = v.get_array();
  return Number(a[0], out.lon) && Number(a[1], out.lat) && Valid(out);
}

bool Same(LonLat a, LonLat b) {
  return a.lon == b.lon && a.lat == b.lat;
}

// A polygon's ring: closed if it was written open (ASA's ST_OVERLAPS example is), and with
// at least three distinct positions.
bool FinishRing(std::vector<LonLat>& ring) {
  if (ring.empty()) return false;
  if (!Same(ring.front(), ring.back())) ring.push_back(ring.front());
  return ring.size() >= 4;
}

bool Positions(const json::value& v, std::vector<LonLat>& out, size_t& budget) {
  if (!v.is_array()) return false;
  for (const auto& p : v.get_array()) {
    LonLat ll;
    if (budget == 0 || !Position(p, ll)) return false;
    --budget;
    out.push_back(ll);
  }
  return true;
}

std::optional<Geometry> FromGeoJson(const json::object& o) {
  const json::value* type = o.if_contains("type");
  const json::value* coords = o.if_contains("coordinates");
  if (!type || !type->is_string() || !coords) return std::nullopt;
  std::string_view t = type->get_string();
  Geometry g;
  size_t budget = kMaxGeoPositions;
  if (strings::IEquals(t, "Point")) {
    g.type = GeoType::kPoint;
    LonLat p;
    if (!Position(*coords, p)) return std::nullopt;
    g.rings.push_back({p});
    return g;
  }
  if (strings::IEquals(t, "LineString")) {
    g.type = GeoType::kLineString;
    g.rings.emplace_back();
    if (!Positions(*coords, g.rings[0], budget) || g.rings[0].size() < 2) return std::nullopt;
    return g;
  }
  if (!strings::IEquals(t, "Polygon") || !coords->is_array() || coords->get_array().empty()) {
    return std::nullopt;
  }
  g.type = GeoType::kPolygon;
  const auto& rings = coords->get_array();
  // [[lon, lat], …] (one ring, as ASA's examples write it) or [[[lon, lat], …], …].
  bool flat =
      rings[0].is_array() && !rings[0].get_array().empty() && !rings[0].get_array()[0].is_array();
  if (flat) {
    g.rings.emplace_back();
    if (!Positions(*coords, g.rings[0], budget)) return std::nullopt;
  } else {
    for (const auto& r : rings) {
      g.rings.emplace_back();
      if (!Positions(r, g.rings.back(), budget)) return std::nullopt;
    }
  }
  for (auto& r : g.rings) {
    if (!FinishRing(r)) return std::nullopt;
  }
  return g;
}

// WKT: POINT (x y), LINESTRING (x y, …), POLYGON ((x y, …), …); case and spaces as one likes.
class WktReader {
 public:
  explicit WktReader(std::string_view s) : s_(s) {}

  std::optional<Geometry> Read() {
    Geometry g;
    std::string_view word = Word();
    size_t budget = kMaxGeoPositions;
    if (strings::IEquals(word, "POINT")) {
      g.type = GeoType::kPoint;
      g.rings.emplace_back();
      if (!Eat('(') || !Pos(g.rings[0], budget) || !Eat(')')) return std::nullopt;
    } else if (strings::IEquals(word, "LINESTRING")) {
      g.type = GeoType::kLineString;
      g.rings.emplace_back();
      if (!List(g.rings[0], budget) || g.rings[0].size() < 2) return std::nullopt;
    } else if (strings::IEquals(word, "POLYGON")) {
      g.type = GeoType::kPolygon;
      if (!Eat('(')) return std::nullopt;
      do {
        g.rings.emplace_back();
        if (!List(g.rings.back(), budget) || !FinishRing(g.rings.back())) return std::nullopt;
      } while (Eat(','));
      if (!Eat(')')) return std::nullopt;
    } else {
      return std::nullopt;
    }
    Space();
    if (i_ != s_.size()) return std::nullopt;
    return g;
  }

 private:
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool Eat(char c) {
    Space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string_view Word() {
    Space();
    size_t start = i_;
    while (i_ < s_.size() && ((s_[i_] >= 'a' && s_[i_] <= 'z') || (s_[i_] >= 'A' && s_[i_] <= 'Z')))
      ++i_;
    return s_.substr(start, i_ - start);
  }
  bool Num(double& out) {
    Space();
    if (i_ < s_.size() && s_[i_] == '+') ++i_;
    auto [end, ec] = std::from_chars(s_.data() + i_, s_.data() + s_.size(), out);
    if (ec != std::errc() || !std::isfinite(out)) return false;
    i_ = static_cast<size_t>(end - s_.data());
    return true;
  }
  bool Pos(std::vector<LonLat>& out, size_t& budget) {
    LonLat p;
    if (budget == 0 || !Num(p.lon) || !Num(p.lat) || !Valid(p)) return false;
    --budget;
    out.push_back(p);
    return true;
  }
  bool List(std::vector<LonLat>& out, size_t& budget) {
    if (!Eat('(')) return false;
    do {
      if (!Pos(out, budget)) return false;
    } while (Eat(','));
    return Eat(')');
  }

  std::string_view s_;
  size_t i_ = 0;
};

// ---- planar relations in (lon, lat)

double Cross(LonLat a, LonLat b, LonLat c) {
  return (b.lon - a.lon) * (c.lat - a.lat) - (b.lat - a.lat) * (c.lon - a.lon);
}

int Sign(double x) {
  return x > 0 ? 1 : x < 0 ? -1 : 0;
}

// p on the closed segment [a, b], knowing the three are collinear.
bool Between(LonLat a, LonLat b, LonLat p) {
  return std::min(a.lon, b.lon) <= p.lon && p.lon <= std::max(a.lon, b.lon) &&
         std::min(a.lat, b.lat) <= p.lat && p.lat <= std::max(a.lat, b.lat);
}

// The closed segments [a, b] and [c, d] share a point (either may be a single point).
bool SegmentsMeet(LonLat a, LonLat b, LonLat c, LonLat d) {
  int d1 = Sign(Cross(c, d, a)), d2 = Sign(Cross(c, d, b));
  int d3 = Sign(Cross(a, b, c)), d4 = Sign(Cross(a, b, d));
  if (d1 * d2 < 0 && d3 * d4 < 0) return true;
  // Collinear touches (a single point's "segment" has itself as its bounding box).
  return (d1 == 0 && Between(c, d, a)) || (d2 == 0 && Between(c, d, b)) ||
         (d3 == 0 && Between(a, b, c)) || (d4 == 0 && Between(a, b, d));
}

// The segments cross at one point inside both (not at an end of either).
bool SegmentsCross(LonLat a, LonLat b, LonLat c, LonLat d) {
  return Sign(Cross(c, d, a)) * Sign(Cross(c, d, b)) < 0 &&
         Sign(Cross(a, b, c)) * Sign(Cross(a, b, d)) < 0;
}

enum class Where : uint8_t { kOutside, kOn, kInside };

Where InRing(LonLat p, const std::vector<LonLat>& ring) {
  bool in = false;
  for (size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++) {
    LonLat a = ring[j], b = ring[i];
    if (Sign(Cross(a, b, p)) == 0 && Between(a, b, p)) return Where::kOn;
    if ((a.lat > p.lat) != (b.lat > p.lat)) {
      double x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat);
      if (p.lon < x) in = !in;
    }
  }
  return in ? Where::kInside : Where::kOutside;
}

double SignedArea(const std::vector<LonLat>& ring) {
  double s = 0;
  for (size_t i = 0; i + 1 < ring.size(); ++i)
    s += ring[i].lon * ring[i + 1].lat - ring[i + 1].lon * ring[i].lat;
  return s / 2;
}

// Where p is relative to polygon g (see the design note on orientation).
Where Locate(LonLat p, const Geometry& g) {
  Where outer = InRing(p, g.rings[0]);
  if (SignedArea(g.rings[0]) < 0) {
    // Clockwise: the globe minus the ring (holes are not read in this form).
    return outer == Where::kInside ? Where::kOutside
           : outer == Where::kOn   ? Where::kOn
                                   : Where::kInside;
  }
  if (outer != Where::kInside) return outer;
  for (size_t h = 1; h < g.rings.size(); ++h) {
    Where w = InRing(p, g.rings[h]);
    if (w == Where::kOn) return Where::kOn;
    if (w == Where::kInside) return Where::kOutside;
  }
  return Where::kInside;
}

// Calls f(a, b) for every segment of g's boundary (a point: one segment of length 0) until it
// returns true.
template <typename F>
bool AnySegment(const Geometry& g, F&& f) {
  for (const auto& r : g.rings) {
    if (r.size() == 1 && f(r[0], r[0])) return true;
    for (size_t i = 0; i + 1 < r.size(); ++i) {
      if (f(r[i], r[i + 1])) return true;
    }
  }
  return false;
}

bool BoundariesMeet(const Geometry& a, const Geometry& b) {
  return AnySegment(a, [&](LonLat p, LonLat q) {
    return AnySegment(b, [&](LonLat r, LonLat s) { return SegmentsMeet(p, q, r, s); });
  });
}

bool BoundariesCross(const Geometry& a, const Geometry& b) {
  return AnySegment(a, [&](LonLat p, LonLat q) {
    return AnySegment(b, [&](LonLat r, LonLat s) { return SegmentsCross(p, q, r, s); });
  });
}

bool Intersects(const Geometry& a, const Geometry& b) {
  if (BoundariesMeet(a, b)) return true;
  // No boundary meets the other: one lies wholly inside a polygon or they are apart.
  if (b.type == GeoType::kPolygon && Locate(a.rings[0][0], b) != Where::kOutside) return true;
  if (a.type == GeoType::kPolygon && Locate(b.rings[0][0], a) != Where::kOutside) return true;
  return false;
}

// The vertices of g and the midpoints of its segments: where a line or polygon is tested
// against a polygon.
template <typename F>
void Samples(const Geometry& g, F&& f) {
  for (const auto& r : g.rings) {
    for (size_t i = 0; i < r.size(); ++i) {
      f(r[i]);
      if (i + 1 < r.size()) f(LonLat{(r[i].lon + r[i + 1].lon) / 2, (r[i].lat + r[i + 1].lat) / 2});
    }
  }
}

// a within polygon b: a's interior is inside b (a point: strictly inside; a line or polygon: no
// part outside and some part inside).
bool Within(const Geometry& a, const Geometry& b) {
  if (a.type == GeoType::kPoint) return Locate(a.rings[0][0], b) == Where::kInside;
  if (BoundariesCross(a, b)) return false;
  bool outside = false, inside = false;
  Samples(a, [&](LonLat p) {
    Where w = Locate(p, b);
    outside |= w == Where::kOutside;
    inside |= w == Where::kInside;
  });
  if (outside || !inside) return false;
  // A hole of b wholly inside polygon a (no boundary crosses it) is a part of a outside b.
  if (a.type == GeoType::kPolygon) {
    for (size_t h = 1; h < b.rings.size(); ++h) {
      if (Locate(b.rings[h][0], a) == Where::kInside) return false;
    }
  }
  return true;
}

// Two polygons whose interiors meet, neither within the other.
bool Overlaps(const Geometry& a, const Geometry& b) {
  if (a.type != GeoType::kPolygon || b.type != GeoType::kPolygon) return false;
  if (Within(a, b) || Within(b, a)) return false;
  if (BoundariesCross(a, b)) return true;
  bool meet = false;
  Samples(a, [&](LonLat p) { meet |= Locate(p, b) == Where::kInside; });
  Samples(b, [&](LonLat p) { meet |= Locate(p, a) == Where::kInside; });
  return meet;
}

// ---- distances

double Radians(double d) {
  return d * kPi / 180;
}

// The geodesic distance from p to the segment [a, b] (straight in lon/lat): the nearest of the
// segment's points, found by a golden-section search along it.
double PointSegment(LonLat p, LonLat a, LonLat b) {
  auto at = [&](double t) {
    return GeodesicDistance(p, LonLat{a.lon + t * (b.lon - a.lon), a.lat + t * (b.lat - a.lat)});
  };
  double best = std::min(at(0), at(1));
  if (Same(a, b)) return best;
  const double g = (std::sqrt(5.0) - 1) / 2;
  double lo = 0, hi = 1, x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
  double f1 = at(x1), f2 = at(x2);
  for (int i = 0; i < 60 && hi - lo > 1e-12; ++i) {
    if (f1 < f2) {
      hi = x2, x2 = x1, f2 = f1, x1 = hi - g * (hi - lo), f1 = at(x1);
    } else {
      lo = x1, x1 = x2, f1 = f2, x2 = lo + g * (hi - lo), f2 = at(x2);
    }
  }
  return std::min({best, f1, f2});
}

// A point, or a line, against a line or a point: 0 where they meet, else the least distance
// from a vertex of one to a segment of the other. With a polygon: 0, as ASA documents.
double Distance(const Geometry& a, const Geometry& b) {
  if (a.type == GeoType::kPolygon || b.type == GeoType::kPolygon) return 0;
  if (a.type == GeoType::kPoint && b.type == GeoType::kPoint)
    return GeodesicDistance(a.rings[0][0], b.rings[0][0]);
  if (BoundariesMeet(a, b)) return 0;
  double best = INFINITY;
  auto from = [&](const Geometry& x, const Geometry& y) {
    for (LonLat v : x.rings[0]) {
      AnySegment(y, [&](LonLat s, LonLat t) {
        best = std::min(best, PointSegment(v, s, t));
        return false;
      });
    }
  };
  from(a, b);
  from(b, a);
  return best;
}

// ---- the functions

Value Null() {
  return Value(json::value(nullptr));
}

std::optional<Geometry> Arg(const Value& v) {
  if (!v.defined()) return std::nullopt;
  return ReadGeometry(*v);
}

json::array Coordinates(LonLat p) {
  return json::array{p.lon, p.lat};
}

std::optional<LonLat> PointArg(const Value& v) {
  auto g = Arg(v);
  if (!g || g->type != GeoType::kPoint) return std::nullopt;
  return g->rings[0][0];
}

Value CreatePoint(std::span<Value> a) {
  LonLat p;
  if (!a[0].defined() || !a[1].defined() || !Number(*a[0], p.lat) || !Number(*a[1], p.lon) ||
      !Valid(p)) {
    return Null();
  }
  return Value(json::value(json::object{{"type", "Point"}, {"coordinates", Coordinates(p)}}));
}

Value CreateLineString(std::span<Value> a) {
  if (a.size() > kMaxGeoPositions) return Null();
  json::array coords;
  for (const Value& v : a) {
    auto p = PointArg(v);
    if (!p) return Null();
    coords.push_back(Coordinates(*p));
  }
  return Value(
      json::value(json::object{{"type", "LineString"}, {"coordinates", std::move(coords)}}));
}

// ASA: at least three points, the first and last equal ("to close the loop"), no holes.
Value CreatePolygon(std::span<Value> a) {
  if (a.size() < 4 || a.size() > kMaxGeoPositions) return Null();
  json::array ring;
  std::vector<LonLat> points;
  for (const Value& v : a) {
    auto p = PointArg(v);
    if (!p) return Null();
    points.push_back(*p);
    ring.push_back(Coordinates(*p));
  }
  if (!Same(points.front(), points.back())) return Null();
  // Not json::array{std::move(ring)}: clang takes that for the move constructor (no nesting).
  json::array rings;
  rings.push_back(std::move(ring));
  return Value(json::value(json::object{{"type", "Polygon"}, {"coordinates", std::move(rings)}}));
}

Value StDistance(std::span<Value> a) {
  auto x = Arg(a[0]), y = Arg(a[1]);
  if (!x || !y) return Null();
  return Value(json::value(Distance(*x, *y)));
}

Value Bit(bool b) {
  return Value(json::value(int64_t{b ? 1 : 0}));
}

Value StWithin(std::span<Value> a) {
  auto x = Arg(a[0]), y = Arg(a[1]);
  if (!x || !y || y->type != GeoType::kPolygon) return Null();
  return Bit(Within(*x, *y));
}

Value StOverlaps(std::span<Value> a) {
  auto x = Arg(a[0]), y = Arg(a[1]);
  if (!x || !y) return Null();
  return Bit(Overlaps(*x, *y));
}

Value StIntersects(std::span<Value> a) {
  auto x = Arg(a[0]), y = Arg(a[1]);
  if (!x || !y) return Null();
  return Bit(Intersects(*x, *y));
}

}  // namespace

std::optional<Geometry> ReadGeometry(const json::value& v) {
  if (v.is_object()) return FromGeoJson(v.get_object());
  if (v.is_string()) return WktReader(v.get_string()).Read();
  return std::nullopt;
}

double GeodesicDistance(LonLat p1, LonLat p2) {
  constexpr double a = 6378137.0, f = 1 / 298.257223563, b = a * (1 - f);
  double L = Radians(p2.lon - p1.lon);
  double U1 = std::atan((1 - f) * std::tan(Radians(p1.lat)));
  double U2 = std::atan((1 - f) * std::tan(Radians(p2.lat)));
  double sU1 = std::sin(U1), cU1 = std::cos(U1), sU2 = std::sin(U2), cU2 = std::cos(U2);
  double lambda = L, sin_sigma = 0, cos_sigma = 1, sigma = 0, cos2_alpha = 1, cos_2sm = 0;
  bool converged = false;
  for (int i = 0; i < 200; ++i) {
    double sl = std::sin(lambda), cl = std::cos(lambda);
    sin_sigma = std::hypot(cU2 * sl, cU1 * sU2 - sU1 * cU2 * cl);
    if (sin_sigma == 0) return 0;  // the same point
    cos_sigma = sU1 * sU2 + cU1 * cU2 * cl;
    sigma = std::atan2(sin_sigma, cos_sigma);
    double sin_alpha = cU1 * cU2 * sl / sin_sigma;
    cos2_alpha = 1 - sin_alpha * sin_alpha;
    cos_2sm = cos2_alpha != 0 ? cos_sigma - 2 * sU1 * sU2 / cos2_alpha : 0;  // equatorial line
    double C = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha));
    double prev = lambda;
    lambda =
        L + (1 - C) * f * sin_alpha *
                (sigma + C * sin_sigma * (cos_2sm + C * cos_sigma * (-1 + 2 * cos_2sm * cos_2sm)));
    if (std::abs(lambda - prev) < 1e-12) {
      converged = true;
      break;
    }
  }
  if (!converged) {
    // Nearly antipodal: the great circle on the sphere of mean radius (within 0.5%).
    constexpr double kMeanRadius = 6371008.8;
    double phi1 = Radians(p1.lat), phi2 = Radians(p2.lat);
    double h = std::pow(std::sin((phi2 - phi1) / 2), 2) +
               std::cos(phi1) * std::cos(phi2) * std::pow(std::sin(L / 2), 2);
    return 2 * kMeanRadius * std::asin(std::min(1.0, std::sqrt(h)));
  }
  double u2 = cos2_alpha * (a * a - b * b) / (b * b);
  double A = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)));
  double B = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)));
  double delta = B * sin_sigma *
                 (cos_2sm + B / 4 *
                                (cos_sigma * (-1 + 2 * cos_2sm * cos_2sm) -
                                 B / 6 * cos_2sm * (-3 + 4 * sin_sigma * sin_sigma) *
                                     (-3 + 4 * cos_2sm * cos_2sm)));
  return b * A * (sigma - delta);
}

void AddGeoFunctions(query::FunctionRegistry& r) {
  constexpr uint8_t kVar = query::FunctionRegistry::kVariadic;
  r.Add("CREATEPOINT", 2, 2, CreatePoint);
  r.Add("CREATELINESTRING", 2, kVar, CreateLineString);
  r.Add("CREATEPOLYGON", 3, kVar, CreatePolygon);
  r.Add("ST_DISTANCE", 2, 2, StDistance);
  r.Add("ST_WITHIN", 2, 2, StWithin);
  r.Add("ST_OVERLAPS", 2, 2, StOverlaps);
  r.Add("ST_INTERSECTS", 2, 2, StIntersects);
}

}  // namespace orrery::stream::internal
