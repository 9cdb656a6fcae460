"""The SQL of the service. Functions take a connection and validated values and return rows."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .params import NearestQuery

# Two steps, both on the GiST index of solution.position:
#  1. KNN (<->) gives the k nearest on the sphere;
#  2. every solution within 1 % more than the k-th one's spheroid distance is re-ranked on the spheroid.
# The sphere and the WGS84 spheroid disagree by less than 0.6 %, so the result is the exact k nearest
# by true (spheroid) distance, ties broken by id.
NEAREST_SOLUTIONS = text("""
WITH origin AS (
    SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS pt
), knn AS (
    SELECT s.position FROM solution s JOIN site ON site.id = s.site_id, origin
    WHERE s.status = 'published' AND site.status = 'published'
    ORDER BY s.position <-> origin.pt
    LIMIT :limit
), reach AS (
    SELECT max(ST_Distance(knn.position, origin.pt)) * 1.01 + 1 AS metres FROM knn, origin
)
SELECT s.id, s.type, s.title, s.voie, s.level, s.domain, s.capacity, s.vacant_places,
       s.service_civique_formula, s.is_example, s.last_checked_at,
       site.id AS site_id, site.name AS site_name, site.kind AS site_kind, site.position_precision,
       c.code AS commune_code, c.name AS commune_name,
       ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat,
       ST_Distance(s.position, origin.pt) AS distance_m
FROM solution s
JOIN site ON site.id = s.site_id
JOIN commune c ON c.code = site.commune_code
CROSS JOIN origin CROSS JOIN reach
WHERE s.status = 'published' AND site.status = 'published'
  AND ST_DWithin(s.position, origin.pt, reach.metres, false)
ORDER BY distance_m, s.id
LIMIT :limit
""")


def nearest_solutions(conn: Connection, query: NearestQuery) -> list[dict]:
    rows = conn.execute(NEAREST_SOLUTIONS, {"lon": query.origin.lon, "lat": query.origin.lat,
                                            "limit": query.limit})
    return [dict(r) for r in rows.mappings()]


COMMUNE_AT = text("""
SELECT code, name, kind, departement_code, academie_code FROM commune
WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY kind = 'ARM' DESC  -- an arrondissement is finer than its city
LIMIT 1
""")


def commune_at(conn: Connection, lon: float, lat: float) -> dict | None:
    row = conn.execute(COMMUNE_AT, {"lon": lon, "lat": lat}).mappings().first()
    return dict(row) if row else None
