// Internal to the stream component: the geospatial functions of the ASA dialect (CreatePoint,
// CreateLineString, CreatePolygon, ST_DISTANCE, ST_WITHIN, ST_OVERLAPS, ST_INTERSECTS) and the
// geometry behind them.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include <boost/json/value.hpp>

#include "query/functions.h"

namespace orrery::stream::internal {

// A geometry read from a value holds at most this many positions (over all its rings);
// a longer one is not a geometry (the functions give null).
inline constexpr size_t kMaxGeoPositions = 10'000;

struct LonLat {
  double lon = 0;
  double lat = 0;
};

enum class GeoType : uint8_t { kPoint, kLineString, kPolygon };

struct Geometry {
  GeoType type = GeoType::kPoint;
  // Point: one ring of one position; LineString: one ring, its vertices in order; Polygon: the
  // exterior ring then holes, each closed (last position == first).
  std::vector<std::vector<LonLat>> rings;
};

// A GeoJSON record ({"type":"Point"|"LineString"|"Polygon","coordinates":…}; a Polygon's
// coordinates may also be one ring written without the outer array, as ASA's examples do) or a
// WKT string (POINT(lon lat), LINESTRING(lon lat, …), POLYGON((lon lat, …), …)). nullopt for
// anything else: other types, latitudes outside [-90, 90], longitudes outside [-180, 180],
// unclosed or short rings, more than kMaxGeoPositions positions.
std::optional<Geometry> ReadGeometry(const boost::json::value& v);

// The geodesic distance in metres on the WGS 84 ellipsoid (Vincenty's inverse formula; for
// nearly antipodal points where it does not converge, the great-circle distance on the sphere
// of WGS 84's mean radius).
double GeodesicDistance(LonLat a, LonLat b);

// Adds the geospatial functions to `r`.
void AddGeoFunctions(query::FunctionRegistry& r);

}  // namespace orrery::stream::internal
