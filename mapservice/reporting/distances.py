"""From every commune to the nearest published solution of each type, kept ready for the coverage figures.

A commune is reached at its town hall (or a point inside it where the town hall is unknown); Paris, Lyon and
Marseille count by arrondissement. Distances are straight lines on the WGS84 ellipsoid, exact, kept only up to
60 km (the widest band the report uses): no row means farther.

The catalogue's triggers append what changed to reporting_pending (migration 0007). `refresh` consumes it in
the caller's unit of work: the communes within 60 km of a changed position are recomputed, everything after a
bulk change or a new reference geography. Refreshers take turns on an advisory lock; a change committed while
a refresh runs stays pending for the next one."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import mercator
from ..taxonomy import SOLUTION_TYPES

REACH_M = 60_000
# Past this many changed positions one full pass is cheaper than the communes around each of them.
MAX_POSITIONS = 2_000
LOCK = 7_406_011  # pg_advisory_xact_lock key of the refresh

# Communes counted: every commune, but Paris, Lyon and Marseille through their arrondissements.
UNITS = "NOT EXISTS (SELECT 1 FROM commune a WHERE a.parent_code = c.code)"


def _nearest_sql(solution_type: str, only_some: bool) -> str:
    # Exact on the ellipsoid, in two steps through the type's Web Mercator index (mercator.py), as the nearest
    # search: the first solution of the walk proves that the nearest lies no farther than it (and only up to
    # REACH_M matters); every solution of the type within the Mercator box of that reach is then measured.
    visible = f"""FROM solution s JOIN site ON site.id = s.site_id AND site.status = 'published'
            WHERE s.status = 'published' AND s.type = '{solution_type}'"""
    return f"""
INSERT INTO reporting_commune_distance (commune_code, type, distance_m)
SELECT o.code, '{solution_type}', n.d
FROM (
    SELECT c.code, geography(c.town_hall) AS town_hall, ST_Y(c.town_hall) AS lat,
           {mercator.point("ST_X(c.town_hall)", "ST_Y(c.town_hall)")} AS mercator
    FROM commune c WHERE {UNITS} {"AND c.code = ANY(:codes)" if only_some else ""}
    OFFSET 0  -- each town hall's points once, not in every step
) o
CROSS JOIN LATERAL (
    SELECT least(ST_Distance(s.position, o.town_hall), {REACH_M}) AS metres
    {visible}
    ORDER BY {mercator.SOLUTION_POINT} <-> o.mercator LIMIT 1
) reach
CROSS JOIN LATERAL (
    SELECT min(ST_Distance(s.position, o.town_hall)) AS d
    {visible}
      AND {mercator.SOLUTION_POINT} <@ {mercator.box("o.mercator", "o.lat", "reach.metres")}
) n
WHERE n.d <= {REACH_M}
"""


NEAR_POSITIONS = text(f"""
SELECT DISTINCT c.code FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) p(lon, lat)
JOIN commune c ON ST_DWithin(geography(c.town_hall), geography(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)),
                             {REACH_M} + 100)
""")


@dataclass(frozen=True)
class Refreshed:
    version: int  # reporting_state.version after the refresh: the report's cache key
    recomputed: int | None  # (commune, type) pairs recomputed (None: all of them)


def recompute(conn: Connection, codes: list[str] | None = None, types=SOLUTION_TYPES) -> None:
    """The distances to the nearest solution of `types` from the communes `codes` (every one when None)."""
    # Compiling these many-row statements (JIT) costs more than running them.
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text(f"""DELETE FROM reporting_commune_distance WHERE type = ANY(:types)
                          {"AND commune_code = ANY(:codes)" if codes is not None else ""}"""),
                 {"codes": codes, "types": list(types)})
    for solution_type in types:
        conn.execute(text(_nearest_sql(solution_type, codes is not None)), {"codes": codes} if codes else {})


def refresh(conn: Connection) -> Refreshed:
    """Brings the distances up to date with the committed catalogue; returns the version they are at."""
    if not conn.scalar(text("""SELECT EXISTS (SELECT 1 FROM reporting_pending) OR reference_version IS DISTINCT FROM
                                      (SELECT version FROM dataset_version WHERE name = 'reference')
                               FROM reporting_state""")):
        return Refreshed(conn.scalar(text("SELECT version FROM reporting_state")), 0)
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK})
    reference = conn.scalar(text("SELECT version FROM dataset_version WHERE name = 'reference'"))
    state = conn.execute(text("SELECT version, reference_version FROM reporting_state")).mappings().one()
    pending = conn.execute(text("SELECT id, positions, lons, lats, types FROM reporting_pending ORDER BY id")
                           ).mappings().all()
    moved = [p for p in pending if p["positions"]]
    where: dict[str, tuple[list, list]] = {}
    for p in moved:
        for lon, lat, solution_type in zip(p["lons"] or (), p["lats"] or (), p["types"] or ()):
            lons, lats = where.setdefault(solution_type, ([], []))
            lons.append(lon)
            lats.append(lat)
    everything = (state["reference_version"] != reference or any(p["lons"] is None for p in moved)
                  or sum(len(lons) for lons, _ in where.values()) > MAX_POSITIONS)
    recomputed = None
    if everything:
        recompute(conn)
    else:
        recomputed = 0
        for solution_type, (lons, lats) in where.items():
            codes = list(conn.scalars(NEAR_POSITIONS, {"lons": lons, "lats": lats}))
            recompute(conn, codes, [solution_type])
            recomputed += len(codes)
    conn.execute(text("DELETE FROM reporting_pending WHERE id = ANY(:ids)"), {"ids": [p["id"] for p in pending]})
    version = conn.scalar(text("""UPDATE reporting_state SET version = version + 1, reference_version = :reference
                                  RETURNING version"""), {"reference": reference})
    return Refreshed(version, recomputed)
