"""Nearest solutions: where a search starts (a position, or the town hall that stands for a commune or an
area), the exact nearest published solutions on the WGS84 spheroid, and the automatic widening of the radius."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy.engine import Connection

from . import feature_sql, mercator, places
from .catalogue import solution_filter_sql
from .communes import COMMUNE_AT, commune_at
from .db import fetch_prepared
from .values import Area, NearestQuery, Point

# The origin's commune as one JSON value, evaluated once in the nearest statement (an InitPlan): saves the
# request a second round trip.
ORIGIN_COMMUNE = COMMUNE_AT.format(columns="json_build_object('code', c.code, 'name', c.name, 'kind', c.kind, "
                                           "'departement_code', c.departement_code, 'academie_code', c.academie_code)")

# Two steps:
#  1. a KNN walk of the published solutions' Web Mercator index (EPSG:3857, mercator.py) finds `limit`
#     matching solutions near the origin, each checked against the filters as it comes (one type walks its own
#     partial index). Inside an area, or within a radius, the walk is also bounded by the Mercator box of that
#     reach ({area_bound}, the radius in {where}), so that fewer than `limit` matches end it at that border
#     instead of across the whole country;
#  2. every matching solution within 1 % more than the farthest of those solutions' true distances is ranked
#     on the WGS84 spheroid, the candidates found in the same index by the Mercator box of that disc.
# Step 1 only bounds the search: any `limit` matching solutions prove that the `limit` nearest lie within the
# farthest of them, so step 2 returns exactly the `limit` nearest by true distance, ties broken by id, whatever
# order the walk took them in. Mercator serves both steps because its plane hardly overlaps: the geography
# index of solution.position (3D boxes around the globe) made the walk from a point in Paris read ~200 index
# pages at 1M sites, against 20 in Mercator; its points are PostgreSQL's native ones in SP-GiST indexes
# (mercator.py, migration 0019). {where} holds the filters, the visibility, the optional radius, area and page
# cursor, and is the same in both steps.
# PostgreSQL then writes each of them as the API's GeoJSON Feature (feature_sql: the list's properties, the
# distance in km, coordinates to 6 decimals), which the app passes on as it is.
NEAREST_SOLUTIONS = """
WITH {area_reach}knn AS (
    SELECT s.position FROM solution s JOIN site ON site.id = s.site_id{area_join}
    WHERE {where}{area_bound}
    -- a constant on the right of <-> lets PostgreSQL walk the index in distance order
    ORDER BY {mercator} <-> {origin_mercator}
    LIMIT {limit}
), reach AS (
    SELECT max(ST_Distance(knn.position, {origin})) * 1.01 + 1 AS metres FROM knn
)
SELECT r.id, r.distance_m, {feature} AS feature,
       -- evaluated once (an InitPlan): saves the HTTP request a second round trip
       ({origin_commune})::text AS origin_commune
FROM (
    SELECT {columns}, {point} AS geometry_, ST_Distance(s.position, {origin}) AS distance_m
    FROM solution s
    JOIN site ON site.id = s.site_id
    JOIN commune c ON c.code = site.commune_code
    CROSS JOIN reach
    WHERE {where}
      AND {mercator} <@ {reach_box}
      -- not ST_DWithin, which PostgreSQL could answer from the geography index instead
      AND _ST_DWithin(s.position, {origin}, reach.metres, false)
    ORDER BY distance_m, s.id
    LIMIT {limit}
) r,
LATERAL (SELECT {picked}, {distance_km} AS distance_km) p
ORDER BY r.distance_m, r.id
"""
ORIGIN = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography"
MERCATOR = mercator.SOLUTION_POINT
ORIGIN_MERCATOR = mercator.point(":lon", ":lat")


def mercator_box(metres: str) -> str:
    """SQL: the Mercator box around the origin that holds every point within `metres` of it on the spheroid."""
    return mercator.box(ORIGIN_MERCATOR, "CAST(:lat AS float8)", metres)


# The parts of each feature PostgreSQL writes, the same for every search.
FEATURE_PARTS = {
    **feature_sql.SOLUTION_LIST_FEATURE,
    "picked": feature_sql.picked(feature_sql.SOLUTION_LIST_PROPERTIES, "r"),
    "distance_km": feature_sql.rounded("r.distance_m / 1000", 3),
}

# Which communes make up an area when results are limited to it (alias c: the site's commune).
AREA_CONDITIONS = {
    "commune": "(c.code = :area_code OR c.parent_code = :area_code)",
    "postcode": ":area_code = ANY(c.postcodes)",
    "departement": "c.departement_code = :area_code",
    "region": "c.region_code = :area_code",
}


# The box of the area's outlines, when results are limited to it. Sites lie inside their commune (checked on
# every save and import), so no matching solution lies farther from the origin than the box's farthest corner
# (a lat/lon box is farthest at a corner; AREA_REACH); the margins cover the box's widening (0.02°) and sphere vs
# spheroid. The walk stays within the Mercator box of that reach (AREA_BOUND).
AREA_BOXES = {
    "commune": "SELECT ST_Extent(geom) FROM commune WHERE code = :area_code OR parent_code = :area_code",
    "postcode": "SELECT ST_Extent(geom) FROM commune WHERE :area_code = ANY(postcodes)",
    "departement": "SELECT ST_Extent(geom) FROM departement WHERE code = :area_code",
    "region": "SELECT ST_Extent(geom) FROM region WHERE code = :area_code",
}
AREA_REACH = f"""area_reach AS MATERIALIZED (
    SELECT coalesce((SELECT max(ST_Distance(corner.geom::geography, {ORIGIN})) * 1.01 + 1000
                     FROM ST_DumpPoints(ST_SetSRID(ST_Expand(({{box}}), 0.02)::geometry, 4326)) AS corner),
                    1e8) AS metres
), """
AREA_BOUND = f"\n      AND {MERCATOR} <@ {mercator_box('(SELECT metres FROM area_reach)')}"


def nearest_sql(query: NearestQuery) -> tuple[str, dict]:
    """The nearest-solutions statement and its binds, but for :lon and :lat (the origin). The limit is part of
    the text (one prepared statement per page size) so that the planner's estimates stay those of a few rows."""
    filters, binds = solution_filter_sql(query.filters, written_choices=True)
    where = [filters, "site.status = 'published'"]
    if query.radius_km is not None:
        # Both: the box bounds the walk in the Mercator index, the distance decides (ST_DWithin could take the
        # geography index instead, then sort every solution of the disc).
        where.append(f"{MERCATOR} <@ {mercator_box('CAST(:radius_m AS float8)')} "
                     f"AND _ST_DWithin(s.position, {ORIGIN}, :radius_m, true)")
        binds["radius_m"] = query.radius_km * 1000
    area_join = area_reach = area_bound = ""
    if query.in_area:
        where.append(AREA_CONDITIONS[query.origin.kind])
        binds["area_code"] = query.origin.code
        area_join = " JOIN commune c ON c.code = site.commune_code"
        area_reach = AREA_REACH.format(box=AREA_BOXES[query.origin.kind])
        area_bound = AREA_BOUND
    if query.after is not None:
        where.append(f"(ST_Distance(s.position, {ORIGIN}), s.id) > (:after_m, :after_id)")
        binds.update(after_m=query.after.distance_m, after_id=query.after.id)
    return (NEAREST_SOLUTIONS.format(where=" AND ".join(where), area_join=area_join, area_reach=area_reach,
                                     area_bound=area_bound, origin=ORIGIN, origin_commune=ORIGIN_COMMUNE,
                                     mercator=MERCATOR, origin_mercator=ORIGIN_MERCATOR,
                                     reach_box=mercator_box("reach.metres"), **FEATURE_PARTS,
                                     limit=int(query.limit)),
            binds)


def nearest_solutions(conn: Connection, query: NearestQuery, origin: Point) -> list[dict]:
    """The query's nearest solutions from `origin` (the query's own point, or where its area starts), nearest
    first: id, distance_m, feature (the GeoJSON Feature's UTF-8 bytes) and origin_commune (the same JSON bytes
    on every row)."""
    sql, binds = nearest_sql(query)
    free_text = (query.filters.level, query.filters.domain, query.filters.starts_before) != (None, None, None)
    # The best plan depends on what the filters select (a rare type is found another way than a common one),
    # not on the origin: the choices are written in the statement, planned once for them. Only the free-text
    # filters (level, domain, start date: API only) are bound, and planned again for each value. No Memoize
    # of the sites along the walk: its hash table, sized for the plan's estimate of the whole walk (hundreds of
    # thousands of rows), took ~1 ms to set up at every execution, for a walk of a few dozen rows.
    return fetch_prepared(conn, sql, {"lon": origin.lon, "lat": origin.lat, **binds},
                          generic_plan=not free_text, text_as_bytes=True,
                          planner={"enable_memoize": "off"})


@dataclass(frozen=True)
class NearestResult:
    rows: list[dict]  # nearest_solutions'
    origin: Point  # where the search started
    commune: dict | None  # the commune holding the origin
    area: dict | None  # the named area searched from: kind, code, name
    radius_km: float | None  # the radius the results lie within; None: everywhere
    radius_automatic: bool  # whether the radius was chosen by widening


def widened_radius(distances_m: list[float], limit: int, steps_km: Sequence[float]) -> float | None:
    """The radius an automatic widening 10 -> 30 -> 60 -> 100 km stops at: the first that holds `limit`
    solutions, i.e. the k-th nearest; None when even the largest does not (then the search is unbounded)."""
    if len(distances_m) < limit:
        return None
    farthest_km = max(distances_m) / 1000
    return next((step for step in steps_km if farthest_km <= step), None)


def nearest(conn: Connection, query: NearestQuery, radius_steps_km: Sequence[float]) -> NearestResult:
    """The nearest solutions for a search from a position or from a named area (NotFound if unknown)."""
    area = None
    if isinstance(query.origin, Area):
        found = places.area_origin(conn, query.origin)
        area = {k: found[k] for k in ("kind", "code", "name")}
        origin = Point(lon=found["lon"], lat=found["lat"])
    else:
        origin = query.origin
    rows = nearest_solutions(conn, query, origin)
    if query.radius_km is not None:
        radius_km, automatic = query.radius_km, False
    else:
        radius_km, automatic = widened_radius([r["distance_m"] for r in rows], query.limit, radius_steps_km), True
    if rows:
        commune = json.loads(rows[0]["origin_commune"]) if rows[0]["origin_commune"] is not None else None
    else:
        commune = commune_at(conn, origin)
    return NearestResult(rows=rows, origin=origin, commune=commune, area=area, radius_km=radius_km,
                         radius_automatic=automatic)
