"""One import, whatever its source: stage the parsed rows, check them (commune, position, territory,
duplicates), compare them field by field with the catalogue and with what the source gave last time, then —
unless it is a dry run — apply exactly that plan.

Phases and locks: parsing, checks and the comparison write only temporary tables, so curators keep saving
meanwhile; the application is a handful of set-based statements (insert, update, log) at the very end of the
caller's transaction. Everything happens in that one transaction: killed at any moment, nothing is left.

Curation: `import_record` keeps, per record, the values the source gave at its last import. A current value
that differs from it was edited by a team: the import keeps it and lists a conflict. Revert: `import_change`
keeps the previous values of every field an import changed."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..db import copy_rows, insert_on_fresh_statistics
from ..errors import ImportOutdated
from ..geocoding import AddressQuery, Geocoder
from .reading import CsvRow
from .records import ImportTerritory, Rejection, SiteCandidate, Skipped
from .report import ImportReport

BATCH = 5000  # rows staged at a time: memory stays bounded whatever the file's size
# A position this close to its commune's outline (degrees, ~200 m) counts as inside: official points on a
# boundary street, outlines simplified by the reference data.
BORDER_TOLERANCE = 0.002
# lat/lon and the projected coordinates of the same row further apart than this are reported.
XY_GAP_WARNING_M = 100


@dataclass(frozen=True)
class Field:
    name: str
    read: str  # SQL (alias t) giving the current value as text
    write: str  # SQL turning the text value `{v}` into the column's type


def _plain(name: str, cast: str = "") -> Field:
    return Field(name, f"t.{name}::text", "{v}" + cast)


SITE_FIELDS = [
    _plain("name"), _plain("kind"), _plain("address"), _plain("postcode"), _plain("commune_code"),
    Field("geom", "format('POINT(%s %s)', round(ST_X(t.geom)::numeric, 7), round(ST_Y(t.geom)::numeric, 7))",
          "ST_GeomFromText({v}, 4326)"),
    _plain("position_precision"), _plain("phone"), _plain("email"), _plain("website"), _plain("onisep_url"),
    _plain("status"),
]
SOLUTION_FIELDS = [
    _plain("type"), _plain("title"), _plain("voie"), _plain("description"), _plain("service_civique_formula"),
    _plain("vacant_places", "::int"), _plain("min_age", "::smallint"), _plain("max_age", "::smallint"),
    _plain("status"),
]
FIELDS = {"site": SITE_FIELDS, "solution": SOLUTION_FIELDS}


def _current_json(fields: list[Field]) -> str:
    return "jsonb_build_object(" + ", ".join(f"'{f.name}', {f.read}" for f in fields) + ")"


def _point_text(lon: float, lat: float) -> str:
    return f"POINT({lon:.7f} {lat:.7f})"


def _str(value) -> str | None:
    return None if value is None else str(value)


# Part of every row's digest: bump it when a parser changes what it makes of the same row, so that the next
# import reads every row again instead of skipping those the last import saw.
ROW_FORMAT = "1"


@dataclass
class ImportJob:
    """An import about to run: which source (catalogue `source` of its records), from which rows, and how a
    row becomes a site with its solutions (or is skipped or rejected)."""

    source: str
    rows: Iterable[CsvRow]
    parse: Callable[[CsvRow], SiteCandidate | Rejection | Skipped]
    report: ImportReport
    # A cheap look at a row telling one that is not a reception site at all (Skipped) from the others (None).
    skip: Callable[[CsvRow], Skipped | None] | None = None
    territory: ImportTerritory | None = None  # None: national
    adopts: str | None = None  # another source whose records with the same keys this one takes over
    geocoder: Geocoder | None = None
    progress: Callable[[], None] = lambda: None
    phase: Callable[[str], None] = lambda name: None  # "lecture", "contrôles", "comparaison", "écriture"
    extra_rejections: Callable[[], list[Rejection]] = lambda: []  # lines the reader could not split


STAGE_TABLES = """
CREATE TEMP TABLE import_stage_site (
    line int, key text, name text, kind text, commune_code text, address text, postcode text, town text,
    lat float8, lon float8, x float8, y float8, srid int, precision text, phone text, email text, website text,
    onisep_url text, archived boolean, geo_lat float8, geo_lon float8, row_digest text, records int)
    ON COMMIT DROP;
CREATE TEMP TABLE import_stage_solution (
    site_key text, key text, type text, title text, voie text, description text, service_civique_formula text,
    vacant_places int, min_age int, max_age int) ON COMMIT DROP;
CREATE TEMP TABLE import_accepted_site (key text PRIMARY KEY, name text, archived boolean) ON COMMIT DROP;
CREATE TEMP TABLE import_plan (
    record_table text, action text, id bigint, version int, key text, site_key text, after jsonb,
    before jsonb, record_before jsonb, record_fields jsonb) ON COMMIT DROP;
"""
SITE_STAGE_COLUMNS = ["line", "key", "name", "kind", "commune_code", "address", "postcode", "town", "lat", "lon",
                      "x", "y", "srid", "precision", "phone", "email", "website", "onisep_url", "archived",
                      "geo_lat", "geo_lon", "row_digest", "records"]
SOLUTION_STAGE_COLUMNS = ["site_key", "key", "type", "title", "voie", "description", "service_civique_formula",
                          "vacant_places", "min_age", "max_age"]
PLAN_COLUMNS = ["record_table", "action", "id", "version", "key", "site_key", "after", "before", "record_before",
                "record_fields"]


def plan(conn: Connection, job: ImportJob) -> ImportReport:
    """Stage, check and compare the job's rows with the catalogue: the report of what an application would do.
    Writes temporary tables only."""
    report = job.report
    report.territory = job.territory.codes() if job.territory is not None else None
    # The checks' cost estimates (a subquery per row) make PostgreSQL compile them to machine code, which
    # takes seconds for a query that runs in milliseconds: no JIT for an import.
    conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql(STAGE_TABLES)
    job.phase("lecture")
    _stage(conn, job)
    sources = [job.source] + ([job.adopts] if job.adopts else [])
    job.phase("contrôles")
    _plan_sites(conn, job, sources)
    job.phase("comparaison")
    _plan_solutions(conn, job, sources)
    # The application joins the plan with what it inserts and updates, by key and by id.
    conn.exec_driver_sql("CREATE INDEX ON import_plan (record_table, action, key); "
                         "CREATE INDEX ON import_plan (record_table, action, id); ANALYZE import_plan")
    report.rejected.sort(key=lambda r: r.line)
    return report


def apply_plan(conn: Connection, job: ImportJob, *, imported_by: str,
               expected_fingerprint: str | None = None) -> ImportReport:
    """Write exactly the planned changes (after `plan`, in the same transaction) and record the import.
    With `expected_fingerprint` (the reviewed dry run's), refuses a plan that differs from it."""
    report = job.report
    if expected_fingerprint and expected_fingerprint != report.fingerprint:
        raise ImportOutdated(
            f"Le rapport a changé depuis l'essai à blanc (empreinte {report.fingerprint} au lieu de "
            f"{expected_fingerprint}) : le catalogue ou le fichier a changé ; relancez l'essai à blanc.")
    job.phase("écriture")
    _apply(conn, job, imported_by)
    return report


# -- staging ------------------------------------------------------------------------------------------

def _digest(row: CsvRow) -> str:
    """The row's values (with the file's column names and the row format), as a short digest."""
    data = "\x1f".join((ROW_FORMAT, *row.columns, "\x1e", *row.values))
    return hashlib.blake2b(data.encode(), digest_size=12).hexdigest()


KNOWN_ROWS = """
SELECT ir.fields ->> '_row', ir.source_key, (ir.fields ->> '_records')::int, ir.fields ->> 'commune_code',
       c.departement_code
FROM import_record ir LEFT JOIN commune c ON c.code = ir.fields ->> 'commune_code'
WHERE ir.record_table = 'site' AND ir.source = :source AND ir.fields ? '_row'
"""


def _known_rows(conn: Connection, job: ImportJob) -> dict[str, tuple[str, int]]:
    """{digest: (site key, records it made)} of the rows the source's last import of each site read, within
    the job's territory: the same row again changes nothing (the records it made are as it left them, or
    edited by a team since, which the import would keep anyway)."""
    return {digest: (key, records) for digest, key, records, commune, dep in conn.execute(
        text(KNOWN_ROWS), {"source": job.source})
        if job.territory is None or job.territory.holds(dep, commune)}


def _stage(conn: Connection, job: ImportJob) -> None:
    report = job.report
    known = _known_rows(conn, job)
    lines_of_key: dict[str, int] = {}
    batch: list[SiteCandidate] = []
    for row in job.rows:
        report.rows_read += 1
        if report.rows_read % 1000 == 0:
            job.progress()
        skipped = job.skip(row) if job.skip else None
        if skipped is not None:
            report.skipped[skipped.what] += 1
            continue
        digest = None
        if known:
            digest = _digest(row)
            seen = known.pop(digest, None)
            if seen is not None and seen[0] not in lines_of_key:  # else a duplicate key, refused below
                key, records = seen
                lines_of_key[key] = row.line
                report.unchanged += records
                continue
        item = job.parse(row)
        if isinstance(item, Skipped):
            report.skipped[item.what] += 1
        elif isinstance(item, Rejection):
            report.rejected.append(item)
        elif item.key in lines_of_key:
            report.rejected.append(Rejection(item.line, f"clé en double : déjà à la ligne {lines_of_key[item.key]}",
                                             None, item.key, "gardez une seule ligne par identifiant"))
        else:
            lines_of_key[item.key] = item.line
            item.row_digest = digest or _digest(row)
            batch.append(item)
            if len(batch) >= BATCH:
                _stage_batch(conn, job, batch)
                batch = []
    _stage_batch(conn, job, batch)
    for rejection in job.extra_rejections():
        report.rows_read += 1
        report.rejected.append(rejection)
    job.progress()
    conn.exec_driver_sql("ANALYZE import_stage_site; ANALYZE import_stage_solution")


def _stage_batch(conn: Connection, job: ImportJob, sites: list[SiteCandidate]) -> None:
    if not sites:
        return
    geocoded = _geocode(job.geocoder, [s for s in sites if s.lat is None and s.x is None and s.address])
    copy_rows(conn, "import_stage_site", SITE_STAGE_COLUMNS, (
        (s.line, s.key, s.name, s.kind, s.commune_code, s.address, s.postcode, s.town, s.lat, s.lon, s.x, s.y,
         s.srid, s.precision, s.phone, s.email, s.website, s.onisep_url, s.archived,
         *geocoded.get(s.key, (None, None)), s.row_digest, 1 + len(s.solutions)) for s in sites))
    copy_rows(conn, "import_stage_solution", SOLUTION_STAGE_COLUMNS, (
        (s.key, o.key, o.type, o.title, o.voie, o.description, o.service_civique_formula, o.vacant_places,
         o.min_age, o.max_age) for s in sites for o in s.solutions))


def _geocode(geocoder: Geocoder | None, sites: list[SiteCandidate]) -> dict[str, tuple[float, float]]:
    """{key: (lat, lon)} of the addresses the geocoder places precisely, inside the row's own commune."""
    if geocoder is None or not sites:
        return {}
    found = geocoder.search_many([AddressQuery(s.key, s.address, postcode=s.postcode, citycode=s.commune_code)
                                  for s in sites])
    commune_of = {s.key: s.commune_code for s in sites}
    return {key: (g.point.lat, g.point.lon) for key, g in found.items()
            if g is not None and g.is_address and g.citycode == commune_of[key]}


AT_SEA_FIX = ("vérifiez la latitude et la longitude (degrés décimaux, WGS84), ou videz-les pour placer le lieu à "
              "son adresse")
OUTSIDE_FIX = "retirez la ligne : le curateur de ce territoire l'importera"


# -- checks and comparison ------------------------------------------------------------------------------

SITE_CHECKS = f"""
WITH s AS (
    SELECT st.*, c.code AS c_code, c.departement_code AS dep, c.geom AS c_geom,
           ST_X(c.town_hall) AS hall_lon, ST_Y(c.town_hall) AS hall_lat,
           CASE WHEN st.lat IS NOT NULL AND st.lon IS NOT NULL
                THEN ST_SetSRID(ST_MakePoint(st.lon, st.lat), 4326) END AS pt,
           CASE WHEN st.x IS NOT NULL AND st.y IS NOT NULL AND r.srid IS NOT NULL
                THEN ST_Transform(ST_SetSRID(ST_MakePoint(st.x, st.y), st.srid), 4326) END AS xy,
           r.srid IS NULL AND st.srid IS NOT NULL AS unknown_srid
    FROM import_stage_site st
    LEFT JOIN commune c ON c.code = st.commune_code
    LEFT JOIN spatial_ref_sys r ON r.srid = st.srid
), checked AS (
    SELECT s.*,
           ST_DWithin(c_geom, pt, {BORDER_TOLERANCE}) AS pt_inside,
           ST_DWithin(c_geom, xy, {BORDER_TOLERANCE}) AS xy_inside
    FROM s
)
SELECT k.line, k.key, k.name, k.kind, k.commune_code, k.address, k.postcode, k.town, k.lat, k.lon,
       k.precision, k.phone, k.email, k.website, k.onisep_url, k.archived, k.geo_lat, k.geo_lon, k.row_digest,
       k.records,
       k.c_code, k.dep, k.hall_lon, k.hall_lat, k.unknown_srid, k.srid,
       k.pt_inside, k.xy_inside, ST_X(k.xy) AS xy_lon, ST_Y(k.xy) AS xy_lat,
       CASE WHEN k.pt IS NOT NULL AND k.pt_inside IS NOT TRUE AND k.c_geom IS NOT NULL
            THEN ST_DWithin(k.c_geom, ST_SetSRID(ST_MakePoint(k.lat, k.lon), 4326), {BORDER_TOLERANCE})
       END AS swapped_inside,
       CASE WHEN k.pt IS NOT NULL AND k.pt_inside IS NOT TRUE AND k.xy_inside IS NOT TRUE THEN
           (SELECT o.code || ' ' || o.departement_code || ' ' || o.name FROM commune o
            WHERE ST_Intersects(o.geom, k.pt) ORDER BY o.kind = 'ARM' DESC LIMIT 1)
       END AS commune_at_point,
       CASE WHEN k.pt IS NOT NULL AND k.xy IS NOT NULL THEN ST_Distance(k.pt::geography, k.xy::geography) END
           AS xy_gap_m,
       t.id, t.version, t.source AS current_source, t.current, t.current_dep, ir.fields AS last
FROM checked k
LEFT JOIN LATERAL (
    SELECT t.id, t.version, t.source, {_current_json(SITE_FIELDS)} AS current,
           (SELECT cc.departement_code FROM commune cc WHERE cc.code = t.commune_code) AS current_dep
    FROM site t
    WHERE t.source = ANY(:sources) AND t.source_key = k.key ORDER BY t.source = :source DESC LIMIT 1) t ON true
LEFT JOIN import_record ir ON ir.record_table = 'site' AND ir.source = :source AND ir.source_key = k.key
"""


def _position(row: dict) -> tuple[str, str, float, float, str, str | None] | Rejection:
    """(commune code, département, lon, lat, precision, warning) for a staged site, or why it is refused."""
    line, key = row["line"], row["key"]
    commune, dep = row["c_code"], row["dep"]
    if row["commune_code"] and commune is None:
        return Rejection(line, f"commune inconnue : code « {row['commune_code']} »", "Code_commune", key,
                         "vérifiez le code INSEE de la commune (pas le code postal)")
    if row["unknown_srid"]:
        return Rejection(line, f"système de coordonnées EPSG:{row['srid']} inconnu", "epsg", key)
    warning = None
    if row["lat"] is not None and row["lon"] is not None:
        lat, lon = row["lat"], row["lon"]
        if commune is None:  # a partner's row with a position and no commune: the commune holding the point
            if row["commune_at_point"] is None:
                return Rejection(line, f"position en mer ou hors de France ({lat}, {lon})", "latitude", key,
                                 AT_SEA_FIX)
            commune, dep, _ = row["commune_at_point"].split(" ", 2)
        elif not row["pt_inside"]:
            if row["swapped_inside"]:
                return Rejection(line, f"latitude et longitude inversées ({lat}, {lon}) : correction proposée "
                                       f"latitude={lon}, longitude={lat}", "latitude", key,
                                 f"échangez les deux colonnes : latitude={lon}, longitude={lat}")
            if row["xy_inside"]:
                warning = (f"latitude/longitude ({lat}, {lon}) hors de la commune {commune} : position prise de "
                           f"coordonnee_X/Y (EPSG:{row['srid']})")
                lat, lon = row["xy_lat"], row["xy_lon"]
            elif row["commune_at_point"] is None:
                return Rejection(line, f"position en mer ou hors de France ({lat}, {lon})", "latitude", key,
                                 AT_SEA_FIX)
            else:
                elsewhere = row["commune_at_point"].split(" ", 2)
                return Rejection(line, f"position ({lat}, {lon}) hors de sa commune {commune} : elle tombe à "
                                       f"{elsewhere[2]}", "latitude", key,
                                 f"corrigez la position, ou la commune si le lieu est bien à {elsewhere[2]} "
                                 f"(code {elsewhere[0]})")
        elif row["xy_gap_m"] is not None and row["xy_gap_m"] > XY_GAP_WARNING_M:
            warning = (f"latitude/longitude et coordonnee_X/Y à {row['xy_gap_m']:.0f} m l'une de l'autre : "
                       "latitude/longitude gardées")
        return commune, dep, lon, lat, row["precision"], warning
    if row["xy_lat"] is not None:
        if not row["xy_inside"]:
            return Rejection(line, f"coordonnee_X/Y hors de la commune {commune}", "coordonnee_X", key)
        return commune, dep, row["xy_lon"], row["xy_lat"], row["precision"], None
    if commune is None:
        return Rejection(line, "ni position ni commune : donnez latitude/longitude ou code postal et commune",
                         None, key)
    if row["geo_lat"] is not None:
        return commune, dep, row["geo_lon"], row["geo_lat"], "address", None
    return commune, dep, row["hall_lon"], row["hall_lat"], "commune", None


def _compare(incoming: dict, current: dict, last: dict | None) -> tuple[dict, dict]:
    """(changes, conflicts), each {field: (current, incoming)}. A field differing from the source's value of
    the last import was edited by a team since: a conflict, kept as is."""
    changes, conflicts = {}, {}
    for name, new in incoming.items():
        now = current.get(name)
        if new == now:
            continue
        base = last.get(name, now) if last is not None else now
        (changes if now == base else conflicts)[name] = (now, new)
    return changes, conflicts


class _Planner:
    """Collects plan rows (COPY in batches) and the report's entries for one table."""

    def __init__(self, conn: Connection, job: ImportJob, table: str):
        self.conn, self.job, self.table, self.rows = conn, job, table, []

    def add(self, *, key: str, name: str, incoming: dict, current: dict | None, last: dict | None,
            record_id: int | None, version: int | None, current_source: str | None, site_key: str | None = None,
            remembered: dict | None = None):
        """`remembered`: more of the source's values kept for the next import (the row's digest...)."""
        report = self.job.report
        record = {**incoming, **remembered} if remembered else incoming
        if current is None:
            self._row("insert", None, None, key, site_key, incoming, None, None, record)
            report.new.append({"table": self.table, "key": key, "name": name})
            return
        changes, conflicts = _compare(incoming, current, last)
        for field_name, (now, new) in conflicts.items():
            report.conflicts.append({"table": self.table, "key": key, "name": name, "field": field_name,
                                     "current": now, "incoming": new})
        if current_source != self.job.source:  # taken over from the adopted source
            changes["source"] = (current_source, self.job.source)
        if changes:
            after = {f: new for f, (_, new) in changes.items()}
            before = {f: now for f, (now, _) in changes.items()}
            self._row("update", record_id, version, key, site_key, after, before, last, record)
            entry = {"table": self.table, "key": key, "name": name}
            if changes.get("status", (None, None))[1] == "archived":
                report.archived.append(entry)
            else:
                report.changed.append({**entry, "fields": [{"field": f, "before": now, "after": new}
                                                           for f, (now, new) in changes.items()]})
        else:
            report.unchanged += 1
            if last != record:  # nothing to change, but the source's values are remembered for next time
                self._row("record", record_id, version, key, site_key, {}, None, last, record)

    def _row(self, action, record_id, version, key, site_key, after, before, record_before, record_fields):
        after_text = json.dumps(after)
        self.rows.append((self.table, action, record_id, version, key, site_key, after_text,
                          None if before is None else json.dumps(before),
                          None if record_before is None else json.dumps(record_before),
                          after_text if record_fields is after else json.dumps(record_fields)))
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self):
        copy_rows(self.conn, "import_plan", PLAN_COLUMNS, self.rows)
        self.rows = []


def _stream(conn: Connection, sql: str, binds: dict) -> Iterator[dict]:
    """Rows of a query fetched in batches (a server-side cursor): memory stays bounded."""
    result = conn.execute(text(sql), binds)
    for row in result.mappings():
        yield row


def _plan_sites(conn: Connection, job: ImportJob, sources: list[str]) -> None:
    report, planner, accepted = job.report, _Planner(conn, job, "site"), []
    for row in _stream(conn, SITE_CHECKS, {"sources": sources, "source": job.source}):
        placed = _position(row)
        if isinstance(placed, Rejection):
            report.rejected.append(placed)
            continue
        commune, dep, lon, lat, precision, warning = placed
        if job.territory is not None and not job.territory.holds(dep, commune):
            report.rejected.append(Rejection(row["line"], f"hors de votre territoire (département {dep})",
                                             None, row["key"], OUTSIDE_FIX))
            continue
        if job.territory is not None and row["id"] is not None and not job.territory.holds(
                row["current_dep"], row["current"]["commune_code"]):
            # The same source and key as a record elsewhere: the file may not move it into this territory.
            report.rejected.append(Rejection(
                row["line"], f"la fiche existante de cet identifiant est hors de votre territoire (département "
                             f"{row['current_dep']})", None, row["key"], OUTSIDE_FIX))
            continue
        if warning:
            report.warnings.append({"line": row["line"], "key": row["key"], "message": warning})
        incoming = {"name": row["name"], "kind": row["kind"], "address": row["address"],
                    "postcode": row["postcode"], "commune_code": commune, "geom": _point_text(lon, lat),
                    "position_precision": precision, "phone": row["phone"], "email": row["email"],
                    "website": row["website"], "onisep_url": row["onisep_url"],
                    "status": "archived" if row["archived"] else "published"}
        planner.add(key=row["key"], name=row["name"], incoming=incoming, current=row["current"], last=row["last"],
                    record_id=row["id"], version=row["version"], current_source=row["current_source"],
                    remembered={"_row": row["row_digest"], "_records": row["records"]})
        accepted.append((row["key"], row["name"], row["archived"]))
    planner.flush()
    copy_rows(conn, "import_accepted_site", ["key", "name", "archived"], accepted)
    conn.exec_driver_sql("ANALYZE import_accepted_site")


SOLUTION_CHECKS = f"""
SELECT ss.*, a.name AS site_name, a.archived, t.id, t.version, t.source AS current_source, t.current,
       ir.fields AS last
FROM import_stage_solution ss
JOIN import_accepted_site a ON a.key = ss.site_key
LEFT JOIN LATERAL (
    SELECT t.id, t.version, t.source, {_current_json(SOLUTION_FIELDS)} AS current FROM solution t
    WHERE t.source = ANY(:sources) AND t.source_key = ss.key ORDER BY t.source = :source DESC LIMIT 1) t ON true
LEFT JOIN import_record ir ON ir.record_table = 'solution' AND ir.source = :source AND ir.source_key = ss.key
"""

# Solutions of the file's sites that the file no longer lists (a lycée that stopped apprenticeship...).
ABSENT_SOLUTIONS = f"""
SELECT t.id, t.version, t.source AS current_source, t.source_key AS key, a.name AS site_name, a.key AS site_key,
       {_current_json(SOLUTION_FIELDS)} AS current, ir.fields AS last
FROM import_accepted_site a
JOIN site s ON s.source = ANY(:sources) AND s.source_key = a.key
JOIN solution t ON t.site_id = s.id AND t.source = ANY(:sources) AND t.status <> 'archived'
LEFT JOIN import_stage_solution ss ON ss.key = t.source_key
LEFT JOIN import_record ir ON ir.record_table = 'solution' AND ir.source = :source AND ir.source_key = t.source_key
WHERE ss.key IS NULL
"""


def _plan_solutions(conn: Connection, job: ImportJob, sources: list[str]) -> None:
    planner = _Planner(conn, job, "solution")
    binds = {"sources": sources, "source": job.source}
    for row in _stream(conn, SOLUTION_CHECKS, binds):
        incoming = {"type": row["type"], "title": row["title"], "voie": row["voie"],
                    "description": row["description"], "service_civique_formula": row["service_civique_formula"],
                    "vacant_places": _str(row["vacant_places"]), "min_age": _str(row["min_age"]),
                    "max_age": _str(row["max_age"]), "status": "archived" if row["archived"] else "published"}
        planner.add(key=row["key"], name=f"{row['site_name']} — {row['title']}", incoming=incoming,
                    current=row["current"], last=row["last"], record_id=row["id"], version=row["version"],
                    current_source=row["current_source"], site_key=row["site_key"])
    for row in _stream(conn, ABSENT_SOLUTIONS, binds):
        current = row["current"]
        planner.add(key=row["key"], name=f"{row['site_name']} — {current['title']}",
                    incoming={**current, "status": "archived"}, current=current,
                    last=row["last"], record_id=row["id"],
                    version=row["version"], current_source=row["current_source"], site_key=row["site_key"])
    planner.flush()


# -- application -------------------------------------------------------------------------------------------

def _set_from(fields: list[Field], values: str) -> str:
    """SET clauses giving each field the value in the jsonb `values` when it holds one, else keeping it."""
    return ", ".join(f"{f.name} = CASE WHEN {values} ? '{f.name}' THEN "
                     f"{f.write.format(v=f'({values} ->> {chr(39)}{f.name}{chr(39)})')} ELSE t.{f.name} END"
                     for f in fields)


def _insert_sql(table: str, part: str) -> str:
    """The planned new records of `table` (those of `part`, a condition on the plan's row `p`) inserted, and their
    changes recorded."""
    fields = FIELDS[table]
    columns = ", ".join(f.name for f in fields)
    values = ", ".join(f.write.format(v=f"(p.after ->> '{f.name}')") for f in fields)
    site_join = ""
    if table == "solution":  # its site, inserted or taken over just before (a join: one lookup per row was slower)
        columns += ", site_id"
        values += ", s.id"
        site_join = "LEFT JOIN site s ON s.source = :source AND s.source_key = p.site_key"
    return f"""
WITH inserted AS (
    INSERT INTO {table} AS t ({columns}, source, source_key, created_by, updated_by)
    SELECT {values}, :source, p.key, :who, :who FROM import_plan p {site_join}
    WHERE p.record_table = '{table}' AND p.action = 'insert' AND {part}
    RETURNING t.id, t.source_key, t.version)
INSERT INTO import_change (run_id, record_table, record_id, source_key, action, before, after, record_before,
                           version_after)
SELECT :run, '{table}', i.id, i.source_key, 'insert', NULL, p.after, NULL, i.version
FROM inserted i JOIN import_plan p ON p.record_table = '{table}' AND p.action = 'insert' AND p.key = i.source_key
"""


def _update_sql(table: str) -> str:
    return f"""
WITH updated AS (
    UPDATE {table} t SET {_set_from(FIELDS[table], 'p.after')},
        source = CASE WHEN p.after ? 'source' THEN p.after ->> 'source' ELSE t.source END,
        version = t.version + 1, updated_at = now(), updated_by = :who
    FROM import_plan p
    WHERE p.record_table = '{table}' AND p.action = 'update' AND t.id = p.id AND t.version = p.version
    RETURNING t.id, t.source_key, t.version)
INSERT INTO import_change (run_id, record_table, record_id, source_key, action, before, after, record_before,
                           version_after)
SELECT :run, '{table}', u.id, u.source_key, 'update', p.before, p.after, p.record_before, u.version
FROM updated u JOIN import_plan p ON p.record_table = '{table}' AND p.action = 'update' AND p.id = u.id
"""


RECORD_SQL = """
INSERT INTO import_record (record_table, source, source_key, record_id, run_id, fields)
SELECT p.record_table, :source, p.key, COALESCE(p.id, t.id, o.id), :run, p.record_fields
FROM import_plan p
LEFT JOIN site t ON p.record_table = 'site' AND p.id IS NULL AND t.source = :source AND t.source_key = p.key
LEFT JOIN solution o ON p.record_table = 'solution' AND p.id IS NULL AND o.source = :source AND o.source_key = p.key
WHERE p.record_table = :table
ON CONFLICT (record_table, source, source_key) DO UPDATE SET
    record_id = EXCLUDED.record_id, run_id = EXCLUDED.run_id, fields = EXCLUDED.fields
"""


def _apply(conn: Connection, job: ImportJob, imported_by: str) -> None:
    report = job.report
    planned = dict(conn.execute(text("""
        SELECT record_table || ':' || action, count(*) FROM import_plan GROUP BY 1""")).all())
    # The run's number first, so that its report (written once: it can be tens of MB) already holds it.
    report.run_id = conn.scalar(text("SELECT nextval(pg_get_serial_sequence('import_run', 'id'))"))
    report.applied = True
    conn.execute(text("""
        INSERT INTO import_run (id, source, file_name, checksum, territory, imported_by, counts, report)
        VALUES (:run, :source, :file, :checksum, :territory, :who, CAST(:counts AS jsonb), CAST(:report AS jsonb))"""),
                 {"run": report.run_id, "source": job.source, "file": report.file_name, "checksum": report.checksum,
                  "territory": report.territory, "who": imported_by, "counts": json.dumps(report.counts()),
                  "report": json.dumps(report.as_dict(), default=str)})
    binds = {"source": job.source, "who": imported_by, "run": report.run_id}
    for table in ("site", "solution"):
        # A first national import into a new database: 16 s, 13 of them in the triggers' lookups, without this.
        insert_on_fresh_statistics(conn, table, planned.get(f"{table}:insert", 0),
                                   lambda part: conn.execute(text(_insert_sql(table, part)), binds), "p.key")
        updated = conn.execute(text(_update_sql(table)), binds).rowcount
        if updated != planned.get(f"{table}:update", 0):
            raise ImportOutdated(
                f"{planned.get(f'{table}:update', 0) - updated} fiche(s) ({table}) ont été modifiées par "
                "quelqu'un pendant l'import : rien n'a été écrit ; relancez l'import.")
        conn.execute(text(RECORD_SQL), {**binds, "table": table})
    if sum(planned.values()) > 1000:
        # Fresh statistics of the columns the next import looks records up by, so that its plans stay index
        # plans (the whole tables' statistics, geometries included, took seconds; autovacuum does them later).
        for table, columns in LOOKUP_COLUMNS.items():
            conn.execute(text(f"ANALYZE {table} ({', '.join(columns)})"))


LOOKUP_COLUMNS = {"site": ("source", "source_key"), "solution": ("source", "source_key", "site_id"),
                  "import_record": ("record_table", "source", "source_key")}
