"""Places: the search box (communes, arrondissements, postcodes, départements, régions) and where a search
from a named area starts. Matching happens in PostgreSQL: search_normalise() (unaccent, case, punctuation,
"saint", ordinals; migration 0002) for exact and prefix matches, pg_trgm word similarity for small typos.
"""
from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .db import fetch_prepared
from .errors import NotFound
from .values import Area, PlaceQuery

# How well a name matches: 0 exact, 1 whole first words ("lyon" -> "Lyon 3e Arrondissement"), 2 prefix
# ("villeur" -> "Villeurbanne"), 3 close spelling ("villeurbane"). Within a tier: closest spelling, then the
# most populous.
TIER = """CASE WHEN {n} = q.norm THEN 0 WHEN {n} LIKE q.norm || ' %' THEN 1
               WHEN {n} LIKE q.norm || '%' THEN 2 ELSE 3 END"""

# An area is represented by the town hall of its most populous commune: usually its chef-lieu.
SEAT = """(SELECT m.town_hall FROM commune m WHERE m.{column} = {code} AND m.kind = 'COM'
          ORDER BY m.population DESC NULLS LAST LIMIT 1)"""
AREA_POPULATION = """(SELECT sum(m.population) FROM commune m WHERE m.{column} = {code} AND m.kind = 'COM')::int"""

# Step 1: what matches, ranked on a few cheap columns.
MATCHING_COMMUNES = f"""
SELECT 'commune' AS kind, c.code, {TIER.format(n="c.name_search")} AS tier,
       word_similarity(q.norm, c.name_search) AS score, c.population
FROM commune c, q
WHERE c.name_search LIKE q.norm || '%' {{fuzzy}}
"""
MATCHING_DEPARTEMENTS = f"""
SELECT 'departement' AS kind, d.code,
       CASE WHEN d.code = upper(q.raw) THEN 0 ELSE {TIER.format(n="d.name_search")} END AS tier,
       word_similarity(q.norm, d.name_search) AS score,
       {AREA_POPULATION.format(column="departement_code", code="d.code")} AS population
FROM (SELECT *, search_normalise(name) AS name_search FROM departement) d, q
WHERE d.code = upper(q.raw) OR d.name_search LIKE q.norm || '%' {{fuzzy}}
"""
MATCHING_REGIONS = f"""
SELECT 'region' AS kind, r.code, {TIER.format(n="r.name_search")} AS tier,
       word_similarity(q.norm, r.name_search) AS score,
       {AREA_POPULATION.format(column="region_code", code="r.code")} AS population
FROM (SELECT *, search_normalise(name) AS name_search FROM region) r, q
WHERE r.name_search LIKE q.norm || '%' {{fuzzy}}
"""
MATCHING_POSTCODES = """
SELECT 'postcode' AS kind, pc AS code, CASE WHEN pc = q.raw THEN 0 ELSE 2 END AS tier, 1.0 AS score,
       sum(c.population)::int AS population
FROM commune c CROSS JOIN LATERAL unnest(c.postcodes) pc, q
WHERE postcodes_text(c.postcodes) LIKE '% ' || q.raw || '%' AND pc LIKE q.raw || '%'
GROUP BY pc, q.raw
"""

# Step 2: what the search box shows of the best few.
# A city divided in arrondissements has its postcodes on them.
COMMUNE_POSTCODES = """CASE WHEN cardinality(c.postcodes) > 0 THEN c.postcodes::text[] ELSE ARRAY(
    SELECT DISTINCT pc FROM commune a, unnest(a.postcodes) pc WHERE a.parent_code = c.code ORDER BY pc) END"""
PLACE_DETAILS = f"""
SELECT c.name, c.kind AS commune_kind, {COMMUNE_POSTCODES} AS postcodes, c.departement_code,
       d.name AS departement_name, c.town_hall AS point, Box2D(c.geom) AS extent, NULL::jsonb AS communes
FROM commune c JOIN departement d ON d.code = c.departement_code WHERE top.kind = 'commune' AND c.code = top.code
UNION ALL
SELECT d.name, NULL, NULL, d.code, d.name, {SEAT.format(column="departement_code", code="d.code")}, Box2D(d.geom), NULL
FROM departement d WHERE top.kind = 'departement' AND d.code = top.code
UNION ALL
SELECT r.name, NULL, NULL, NULL, NULL, {SEAT.format(column="region_code", code="r.code")}, Box2D(r.geom), NULL
FROM region r WHERE top.kind = 'region' AND r.code = top.code
UNION ALL
SELECT (array_agg(c.name ORDER BY c.population DESC NULLS LAST))[1], NULL, ARRAY[top.code], NULL, NULL,
       (array_agg(c.town_hall ORDER BY c.population DESC NULLS LAST))[1], ST_Extent(c.geom),
       jsonb_agg(jsonb_build_object('code', c.code, 'name', c.name) ORDER BY c.population DESC NULLS LAST)
FROM commune c WHERE top.kind = 'postcode' AND c.postcodes @> ARRAY[CAST(top.code AS varchar)]
HAVING count(*) > 0
"""

PLACE_SEARCH = f"""
WITH q AS (SELECT search_normalise(:q) AS norm, CAST(:q AS text) AS raw), found AS (
{{parts}}
), top AS (
    SELECT * FROM found
    ORDER BY tier, CASE WHEN tier = 3 THEN round(score::numeric, 1) END DESC NULLS LAST,
             population DESC NULLS LAST, kind, code
    LIMIT :limit
)
SELECT top.kind, top.code, p.name, p.commune_kind, p.postcodes, p.departement_code, p.departement_name,
       top.population, ST_X(p.point) AS lon, ST_Y(p.point) AS lat,
       ST_XMin(p.extent) AS west, ST_YMin(p.extent) AS south, ST_XMax(p.extent) AS east,
       ST_YMax(p.extent) AS north, p.communes
FROM top CROSS JOIN LATERAL ({PLACE_DETAILS}) p
ORDER BY top.tier, CASE WHEN top.tier = 3 THEN round(top.score::numeric, 1) END DESC NULLS LAST,
         top.population DESC NULLS LAST, top.kind, top.code
"""


def search(conn: Connection, query: PlaceQuery) -> list[dict]:
    """Places matching the text typed in a search box, best first."""
    # Trigram similarity needs a few letters: below that, exact and prefix matches only (a short word is
    # "similar" to too many names).
    fuzzy = len(query.text) >= 5
    parts = []
    for kind, sql, alias in (("commune", MATCHING_COMMUNES, "c"), ("departement", MATCHING_DEPARTEMENTS, "d"),
                             ("region", MATCHING_REGIONS, "r")):
        if kind in query.kinds:
            parts.append(sql.format(fuzzy=f"OR q.norm <% {alias}.name_search" if fuzzy else ""))
    if "postcode" in query.kinds and re.fullmatch(r"\d{2,5}", query.text):
        parts.append(MATCHING_POSTCODES)
    if not parts:  # e.g. only postcodes asked for, and the text is not the start of one
        return []
    sql = PLACE_SEARCH.format(parts="\nUNION ALL\n".join(parts))
    return [dict(r) for r in conn.execute(text(sql), {"q": query.text, "limit": query.limit}).mappings()]


AREA_ORIGINS = {
    "commune": """SELECT c.name, ST_X(c.town_hall) AS lon, ST_Y(c.town_hall) AS lat FROM commune c
                  WHERE c.code = :code""",
    # Prefer an arrondissement (its postcode is its own), then the most populous commune.
    "postcode": """SELECT c.name, ST_X(c.town_hall) AS lon, ST_Y(c.town_hall) AS lat FROM commune c
                   WHERE c.postcodes @> ARRAY[CAST(:code AS varchar)]
                   ORDER BY c.kind = 'ARM' DESC, c.population DESC NULLS LAST, c.code LIMIT 1""",
    "departement": f"""SELECT d.name, ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat FROM departement d,
                       LATERAL (SELECT {SEAT.format(column="departement_code", code="d.code")} AS pt) p
                       WHERE d.code = :code""",
    "region": f"""SELECT r.name, ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat FROM region r,
                  LATERAL (SELECT {SEAT.format(column="region_code", code="r.code")} AS pt) p
                  WHERE r.code = :code""",
}

UNKNOWN_AREA = {"commune": "Aucune commune n'a le code INSEE '{code}'.",
                "postcode": "Aucune commune n'a le code postal '{code}'.",
                "departement": "Aucun département n'a le code '{code}'.",
                "region": "Aucune région n'a le code '{code}'."}


def area_origin(conn: Connection, area: Area) -> dict:
    """Where a search from an area starts (town hall of the commune, or of the area's most populous
    commune), with the area's name; NotFound when the code is unknown."""
    # Prepared and planned once: it comes before every nearest search from an area.
    rows = fetch_prepared(conn, AREA_ORIGINS[area.kind], {"code": area.code}, generic_plan=True)
    row = rows[0] if rows else None
    if row is None or row["lon"] is None:
        raise NotFound(UNKNOWN_AREA[area.kind].format(code=area.code)
                       + " Cherchez le lieu avec /api/v1/places?q=… pour obtenir son code.", parameter=area.kind)
    return {"kind": area.kind, "code": area.code, **row}
