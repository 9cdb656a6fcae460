"""The SQL of the service. Functions take a connection and validated values and return rows."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .db import fetch_prepared
from .errors import NotFound
from .params import NearestQuery, SolutionFilters


def solution_filter_sql(filters: SolutionFilters, alias: str = "s") -> tuple[str, dict]:
    """SQL conditions (joined by AND, always valid) and their bind parameters for a solution table alias.
    Visibility is part of it: only published solutions are ever read by the public side."""
    conditions = [f"{alias}.status = 'published'"]
    binds: dict = {}
    if filters.types:
        conditions.append(f"{alias}.type = ANY(:f_types)")
        binds["f_types"] = list(filters.types)
    if filters.voies:
        conditions.append(f"{alias}.voie = ANY(:f_voies)")
        binds["f_voies"] = list(filters.voies)
    if filters.formulas:
        conditions.append(f"{alias}.service_civique_formula = ANY(:f_formulas)")
        binds["f_formulas"] = list(filters.formulas)
    if filters.level:
        conditions.append(f"unaccent(lower({alias}.level)) = unaccent(lower(:f_level))")
        binds["f_level"] = filters.level
    if filters.domain:
        conditions.append(f"unaccent({alias}.domain) ILIKE '%' || unaccent(:f_domain) || '%'")
        binds["f_domain"] = filters.domain.replace("%", r"\%").replace("_", r"\_")
    if filters.has_vacancy:
        conditions.append(f"{alias}.vacant_places > 0")
    if filters.open_to_minors:
        conditions.append(f"({alias}.min_age IS NULL OR {alias}.min_age < 18)")
    if filters.starts_before:
        conditions.append(f"({alias}.start_date IS NULL OR {alias}.start_date <= :f_starts_before)")
        binds["f_starts_before"] = filters.starts_before
    return " AND ".join(conditions), binds

# Two steps:
#  1. a planar KNN (<->) on the sites' Web Mercator positions finds the `limit` nearest sites offering a
#     matching solution: cheap, and conformal, so they are (nearly) the nearest by true distance too;
#  2. every matching solution within 1 % more than the farthest of those sites' true distances is ranked on
#     the WGS84 spheroid (GiST index of solution.position).
# Step 1 only bounds the search: at least `limit` matching solutions lie within that distance, so step 2
# returns exactly the `limit` nearest by true distance, ties broken by id. {where} holds the filters, the
# visibility, the optional radius, area and page cursor, and is the same in both steps.
NEAREST_SOLUTIONS = """
WITH knn AS (
    SELECT site.geom FROM site
    WHERE site.status = 'published'
      AND EXISTS (SELECT 1 FROM solution s {knn_join} WHERE s.site_id = site.id AND {where})
    -- a constant on the right of <-> lets PostgreSQL walk the GiST index in distance order
    -- (Web Mercator stops at ±85°: the ordering point is clamped, step 2 stays exact)
    ORDER BY site.geom_3857 <-> ST_Transform(ST_SetSRID(ST_MakePoint(
        CAST(:lon AS float8), greatest(-85.0, least(85.0, CAST(:lat AS float8)))), 4326), 3857)
    LIMIT :limit
), reach AS (
    SELECT max(ST_Distance(knn.geom::geography, {origin})) * 1.01 + 1 AS metres FROM knn
)
SELECT s.id, s.type, s.title, s.voie, s.level, s.domain, s.capacity, s.vacant_places, s.start_date,
       s.service_civique_formula, s.min_age, s.max_age, s.is_example, s.last_checked_at,
       site.id AS site_id, site.name AS site_name, site.kind AS site_kind, site.address, site.postcode,
       site.position_precision, c.code AS commune_code, c.name AS commune_name,
       ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat,
       ST_Distance(s.position, {origin}) AS distance_m,
       -- evaluated once (an InitPlan): saves the HTTP request a second round trip
       (SELECT json_build_object('code', oc.code, 'name', oc.name, 'kind', oc.kind,
                                 'departement_code', oc.departement_code, 'academie_code', oc.academie_code)
        FROM commune oc WHERE ST_Intersects(oc.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        ORDER BY oc.kind = 'ARM' DESC LIMIT 1) AS origin_commune
FROM solution s
JOIN site ON site.id = s.site_id
JOIN commune c ON c.code = site.commune_code
CROSS JOIN reach
WHERE {where}
  AND ST_DWithin(s.position, {origin}, reach.metres, false)
ORDER BY distance_m, s.id
LIMIT :limit
"""
ORIGIN = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography"

# Which communes make up an area when results are limited to it (alias c: the site's commune).
AREA_CONDITIONS = {
    "commune": "(c.code = :area_code OR c.parent_code = :area_code)",
    "postcode": ":area_code = ANY(c.postcodes)",
    "departement": "c.departement_code = :area_code",
    "region": "c.region_code = :area_code",
}


def nearest_sql(query: NearestQuery) -> tuple[str, dict]:
    """The nearest-solutions statement and its binds, but for :lon and :lat (the origin)."""
    filters, binds = solution_filter_sql(query.filters)
    where = [filters, "site.status = 'published'"]
    if query.radius_km is not None:
        where.append(f"ST_DWithin(s.position, {ORIGIN}, :radius_m)")
        binds["radius_m"] = query.radius_km * 1000
    if query.in_area:
        where.append(AREA_CONDITIONS[query.origin.kind])
        binds["area_code"] = query.origin.code
    if query.after is not None:
        where.append(f"(ST_Distance(s.position, {ORIGIN}), s.id) > (:after_m, :after_id)")
        binds.update(after_m=query.after.distance_m, after_id=query.after.id)
    # The KNN step reads the commune only when the area needs it.
    knn_join = "JOIN commune c ON c.code = site.commune_code" if query.in_area else ""
    return (NEAREST_SOLUTIONS.format(where=" AND ".join(where), knn_join=knn_join, origin=ORIGIN),
            {"limit": query.limit, **binds})


def nearest_solutions(conn: Connection, query: NearestQuery, lon: float | None = None,
                      lat: float | None = None) -> list[dict]:
    """The nearest solutions from (lon, lat), by default the query's own position."""
    if lon is None or lat is None:
        lon, lat = query.origin.lon, query.origin.lat
    sql, binds = nearest_sql(query)
    return fetch_prepared(conn, sql, {"lon": lon, "lat": lat, **binds})


SOLUTION_BY_ID = text("""
SELECT s.id, s.type, s.title, s.description, s.voie, s.level, s.domain, s.capacity, s.vacant_places,
       s.start_date, s.end_date, s.service_civique_formula, s.hours_per_week, s.school_hours_per_week,
       s.min_age, s.max_age, s.eligibility, s.how_to_apply, s.is_example, s.last_checked_at,
       site.id AS site_id, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat
FROM solution s JOIN site ON site.id = s.site_id
WHERE s.id = :id AND s.status = 'published' AND site.status = 'published'
""")

SITE_BY_ID = text("""
SELECT site.id, site.name, site.kind, site.address, site.postcode, site.phone, site.email, site.website,
       site.opening_hours, site.accessibility, site.position_precision, site.is_example, site.last_checked_at,
       c.code AS commune_code, c.name AS commune_name, c.departement_code, c.academie_code,
       ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat
FROM site JOIN commune c ON c.code = site.commune_code
WHERE site.id = :id AND site.status = 'published'
""")

SOLUTIONS_OF_SITE = text("""
SELECT s.id, s.type, s.title, s.voie, s.level, s.domain, s.capacity, s.vacant_places, s.start_date,
       s.service_civique_formula, s.min_age, s.max_age, s.last_checked_at
FROM solution s WHERE s.site_id = :id AND s.status = 'published' ORDER BY s.type, s.title, s.id
""")


def solution_by_id(conn: Connection, solution_id: int) -> dict:
    """One published solution with its published site, or NotFound."""
    row = conn.execute(SOLUTION_BY_ID, {"id": solution_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucune solution publiée n'a l'identifiant {solution_id}.", parameter="id")
    return {**row, "site": site_by_id(conn, row["site_id"], with_solutions=False)}


def site_by_id(conn: Connection, site_id: int, with_solutions: bool = True) -> dict:
    """One published site (with its published solutions), or NotFound."""
    row = conn.execute(SITE_BY_ID, {"id": site_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucun lieu publié n'a l'identifiant {site_id}.", parameter="id")
    site = dict(row)
    if with_solutions:
        site["solutions"] = [dict(r) for r in conn.execute(SOLUTIONS_OF_SITE, {"id": site_id}).mappings()]
    return site


COMMUNE_AT = text("""
SELECT code, name, kind, departement_code, academie_code FROM commune
WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY kind = 'ARM' DESC  -- an arrondissement is finer than its city
LIMIT 1
""")


def commune_at(conn: Connection, lon: float, lat: float) -> dict | None:
    row = conn.execute(COMMUNE_AT, {"lon": lon, "lat": lat}).mappings().first()
    return dict(row) if row else None
