"""The SQL of the service. Functions take a connection and validated values and return rows."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

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

# Two steps, both on the GiST index of solution.position:
#  1. KNN (<->) gives the k nearest on the sphere;
#  2. every solution within 1 % more than the k-th one's spheroid distance is re-ranked on the spheroid.
# The sphere and the WGS84 spheroid disagree by less than 0.6 %, so the result is the exact k nearest
# by true (spheroid) distance, ties broken by id.
NEAREST_SOLUTIONS = """
WITH knn AS (
    SELECT s.position FROM solution s JOIN site ON site.id = s.site_id
    WHERE {filters} AND site.status = 'published'
    -- a constant on the right of <-> lets PostgreSQL walk the GiST index in distance order
    ORDER BY s.position <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
    LIMIT :limit
), reach AS (
    SELECT max(ST_Distance(knn.position, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)) * 1.01 + 1
           AS metres
    FROM knn
)
SELECT s.id, s.type, s.title, s.voie, s.level, s.domain, s.capacity, s.vacant_places,
       s.service_civique_formula, s.is_example, s.last_checked_at,
       site.id AS site_id, site.name AS site_name, site.kind AS site_kind, site.position_precision,
       c.code AS commune_code, c.name AS commune_name,
       ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat,
       ST_Distance(s.position, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m
FROM solution s
JOIN site ON site.id = s.site_id
JOIN commune c ON c.code = site.commune_code
CROSS JOIN reach
WHERE {filters} AND site.status = 'published'
  AND ST_DWithin(s.position, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, reach.metres, false)
ORDER BY distance_m, s.id
LIMIT :limit
"""


def nearest_solutions(conn: Connection, query: NearestQuery) -> list[dict]:
    filters, binds = solution_filter_sql(query.filters)
    rows = conn.execute(text(NEAREST_SOLUTIONS.format(filters=filters)),
                        {"lon": query.origin.lon, "lat": query.origin.lat, "limit": query.limit, **binds})
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
