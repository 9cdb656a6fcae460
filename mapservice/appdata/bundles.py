"""Offline bundles: for a département, a région or all of France, one gzipped JSON file the app downloads once
and answers from without network — the published solutions and sites (GeoJSON), the coverage (académies, PSAD
platforms, FOQUALE networks and their contacts), the place-search index of the area's communes and postcodes,
and the cursor from which to follow the catalogue's changes.

A bundle is kept by the digest of its bytes (its URL and ETag never change meaning). It is rebuilt only when
the area changed since: a catalogue change touching the area's box, its coverage, or the reference geography.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import db, feature_sql
from ..errors import NotFound
from ..taxonomy import SITE_KINDS
from ..values import FeedCursor
from . import changelog, features

FORMAT = "masecondechance-bundle"
FORMAT_VERSION = 1
KEEP_PER_AREA = 3  # older bundles stay downloadable a while for apps that have just read the manifest
FRANCE = "FR"


@dataclass(frozen=True)
class BundleArea:
    """A département, a région, or France (kind 'france', code 'FR')."""

    kind: str
    code: str


AREA_KINDS = ("departement", "region", "france")

# Which communes an area holds (alias c).
AREA_COMMUNES = {
    "departement": "c.departement_code = :code",
    "region": "c.region_code = :code",
    "france": "true",
}
AREA_ROW = {
    "departement": "SELECT code, name, geom FROM departement WHERE code = :code",
    "region": "SELECT code, name, geom FROM region WHERE code = :code",
    "france": "SELECT 'FR'::text AS code, 'France'::text AS name, ST_Union(geom) AS geom FROM region "
              "WHERE :code = 'FR'",
}


def all_areas(conn: Connection) -> list[BundleArea]:
    """Every bundle there is: France, each région, each département."""
    rows = conn.execute(text("""
        SELECT 'region' AS kind, code FROM region
        UNION ALL SELECT 'departement', code FROM departement
        ORDER BY 1 DESC, 2""")).all()
    return [BundleArea("france", FRANCE)] + [BundleArea(r.kind, r.code) for r in rows]


def area_info(conn: Connection, area: BundleArea) -> dict:
    """Name and WGS84 box of the area; NotFound when the code is unknown."""
    if area.kind not in AREA_KINDS:
        raise NotFound(f"Type de zone inconnu : '{area.kind}'. Zones possibles : {', '.join(AREA_KINDS)}.",
                       parameter="kind")
    row = None if not re.fullmatch(r"[0-9A-Z]{2,3}", area.code) else conn.execute(text(f"""
        SELECT a.code, a.name, ST_XMin(a.geom) AS west, ST_YMin(a.geom) AS south, ST_XMax(a.geom) AS east,
               ST_YMax(a.geom) AS north
        FROM ({AREA_ROW[area.kind]}) a WHERE a.code IS NOT NULL AND a.geom IS NOT NULL"""),
                       {"code": area.code}).mappings().first()
    if row is None:
        what = {"departement": "Aucun département", "region": "Aucune région", "france": "Aucune zone"}[area.kind]
        raise NotFound(f"{what} n'a le code '{area.code}'. Le manifeste /api/v1/bundles liste les paquets.",
                       parameter="code")
    return {"kind": area.kind, "code": row["code"], "name": row["name"],
            "bbox": [round(row[k], 6) for k in ("west", "south", "east", "north")]}


# -- content -----------------------------------------------------------------------------------------------

def _features(properties: list[tuple[str, str]], source: str, order: str) -> str:
    """SQL writing one GeoJSON Feature (text) per row of `source` (where the site's point is `site.geom`), in
    `order`, with `properties` (name, expression) in that order. PostgreSQL writes the JSON (row_to_json, in C,
    after the rows are sorted); coordinates at full precision. The result still takes `.format(area=...)`.
    This is what a feature is: migration 0012 keeps a copy of this SQL, whose triggers store each feature as
    written here, and the bundles and the change feed read the stored text (appdata.features); the tests compare
    every stored feature with this SQL's (a change of properties or labels needs a revision that renders them
    again)."""
    return f"""
SELECT '{{{{"type":"Feature","id":' || r.id || ',"geometry":{{{{"type":"Point","coordinates":['
       || r.lon_ || ',' || r.lat_ || ']}}}},"properties":' || row_to_json(p)::text || '}}}}' AS feature
FROM (SELECT {feature_sql.columns(properties)}, ST_X(site.geom) AS lon_, ST_Y(site.geom) AS lat_ {source}
      ORDER BY {order}) r,
     LATERAL (SELECT {feature_sql.picked(properties, "r")}) p
"""


# The API's lists' properties (mapservice/web/features.py), plus the detail's.
SOLUTION_PROPERTIES = feature_sql.SOLUTION_LIST_PROPERTIES + feature_sql.SOLUTION_DETAIL_PROPERTIES
SOLUTION_SOURCE = """
    FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
    WHERE s.status = 'published' AND site.status = 'published' AND {area}"""
SOLUTIONS = _features(SOLUTION_PROPERTIES, SOLUTION_SOURCE, "s.id")

SITE_PROPERTIES = [
    ("id", "site.id"), ("name", "site.name"), ("kind", "site.kind"),
    ("kind_label", feature_sql.label("site.kind", SITE_KINDS)),
    ("address", "site.address"), ("postcode", "site.postcode"), ("commune_code", "c.code"),
    ("commune_name", "c.name"), ("departement_code", "c.departement_code"), ("academie_code", "c.academie_code"),
    ("contact", "json_build_object('phone', site.phone, 'email', site.email, 'website', site.website)"),
    ("opening_hours", "site.opening_hours"), ("accessibility", "site.accessibility"),
    ("position_precision", "site.position_precision"),
    ("last_checked_at", feature_sql.utc_iso("site.last_checked_at")),
    ("is_example", "site.is_example"), ("solution_ids", "offered.ids"),
]
SITE_SOURCE = """
    FROM site JOIN commune c ON c.code = site.commune_code
    JOIN LATERAL (SELECT array_agg(s.id ORDER BY s.type, s.title, s.id) AS ids FROM solution s
                  WHERE s.site_id = site.id AND s.status = 'published') offered ON offered.ids IS NOT NULL
    WHERE site.status = 'published' AND {area}"""
SITES = _features(SITE_PROPERTIES, SITE_SOURCE, "site.id")

# The search index: the area's communes with their town hall (where a search from them starts), their
# postcodes and their normalised name (the service's search_normalise, for matching offline as online).
PLACES = """
SELECT c.code, c.name, c.name_search, c.kind, c.parent_code, c.departement_code, c.population,
       c.postcodes::text[] AS postcodes, ST_X(c.town_hall) AS lon, ST_Y(c.town_hall) AS lat
FROM commune c WHERE {area}
ORDER BY c.code
"""

COVERAGE_ACADEMIES = """
SELECT DISTINCT a.code, a.name, a.region_code FROM commune c JOIN academie a ON a.code = c.academie_code
WHERE {area} ORDER BY a.code
"""

# The PSAD platforms responsible for communes of the area, their FOQUALE network and the communes they cover.
COVERAGE_PLATFORMS = """
SELECT p.id, p.name, p.departement_code, p.contact_name, p.phone, p.email, p.website, p.address, p.is_example,
       p.last_checked_at, f.id AS network_id, f.name AS network_name, f.contact_name AS network_contact_name,
       f.phone AS network_phone, f.email AS network_email, f.is_example AS network_is_example,
       f.last_checked_at AS network_last_checked_at,
       ARRAY(SELECT pc.commune_code FROM psad_platform_commune pc WHERE pc.platform_id = p.id
             ORDER BY pc.commune_code)::text[] AS communes
FROM psad_platform p LEFT JOIN foquale_network f ON f.platform_id = p.id AND f.status = 'published'
WHERE p.status = 'published' AND EXISTS (
    SELECT 1 FROM psad_platform_commune pc JOIN commune c ON c.code = pc.commune_code
    WHERE pc.platform_id = p.id AND {area})
ORDER BY p.id
"""


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def coverage(conn: Connection, area: BundleArea) -> dict:
    where = AREA_COMMUNES[area.kind]
    binds = {"code": area.code}
    academies = [dict(r) for r in conn.execute(text(COVERAGE_ACADEMIES.format(area=where)), binds).mappings()]
    platforms = []
    for r in conn.execute(text(COVERAGE_PLATFORMS.format(area=where)), binds):
        network = None
        if r.network_id is not None:
            network = {"id": r.network_id, "name": r.network_name,
                       "contact": {"name": r.network_contact_name, "phone": r.network_phone,
                                   "email": r.network_email},
                       "last_checked_at": _iso(r.network_last_checked_at), "is_example": r.network_is_example}
        platforms.append({
            "id": r.id, "name": r.name, "departement_code": r.departement_code,
            "contact": {"name": r.contact_name, "phone": r.phone, "email": r.email, "website": r.website,
                        "address": r.address},
            "last_checked_at": _iso(r.last_checked_at), "is_example": r.is_example,
            "foquale_network": network, "communes": list(r.communes)})
    return {"academies": academies, "psad_platforms": platforms}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def places(conn: Connection, area: BundleArea) -> dict:
    communes = [{
        "code": r.code, "name": r.name, "name_search": r.name_search, "kind": r.kind,
        "parent_code": r.parent_code, "departement_code": r.departement_code, "population": r.population,
        "postcodes": list(r.postcodes), "town_hall": [r.lon, r.lat],
    } for r in conn.execute(text(PLACES.format(area=AREA_COMMUNES[area.kind])), {"code": area.code})]
    postcodes: dict[str, list[str]] = {}
    for commune in communes:
        for postcode in commune["postcodes"]:
            postcodes.setdefault(postcode, []).append(commune["code"])
    return {"communes": communes, "postcodes": dict(sorted(postcodes.items()))}


def reference_version(conn: Connection) -> str | None:
    return conn.execute(text("SELECT version FROM dataset_version WHERE name = 'reference'")).scalar()


@dataclass(frozen=True)
class Bundle:
    digest: str
    area: BundleArea
    cursor: int
    built_at: dt.datetime
    build_ms: int
    solutions: int
    sites: int
    size: int


class _CommaJoined:
    """A file that takes COPY's output, one JSON feature per line, and writes the features comma-separated."""

    def __init__(self, out):
        self.out, self.pending, self.rows = out, b"", 0

    def write(self, data: bytes) -> None:
        if data:
            self.rows += data.count(b"\n")
            data = self.pending + data
            self.pending = data[-1:]  # held back: the very last one is the last line's end
            self.out.write(data[:-1].replace(b"\n", b","))


def _write_features(out, conn: Connection, kind: str, area: BundleArea) -> int:
    """Write the area's features of `kind` (as stored at write time, in id order) into `out`, comma-separated;
    how many. COPY streams them in the caller's transaction; JSON text holds no raw newline, and the CSV quote
    and delimiter chosen never occur in it, so each line is a feature as PostgreSQL wrote it."""
    statement = text(f"SELECT x.feature FROM ({features.stored(kind, AREA_COMMUNES[area.kind])}) x ORDER BY x.id")
    if area.kind != "france":
        statement = statement.bindparams(code=area.code)
    query = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    joined = _CommaJoined(out)
    with db.dbapi_cursor(conn) as cursor:
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')",
                           joined)
    return joined.rows


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def build(conn: Connection, area: BundleArea) -> Bundle:
    """Build and keep the area's bundle from the catalogue as `conn` sees it: ideally one snapshot (REPEATABLE
    READ, as the refresh does); in READ COMMITTED the cursor is read first, so the content is never older than
    it (the app may then see again a change the bundle already holds, which it applies harmlessly)."""
    started = time.perf_counter()
    cursor = changelog.position(conn)
    info = area_info(conn, area)
    covered = coverage(conn, area)
    buffer = io.BytesIO()
    # mtime=0 and no build date inside: the same content always makes the same bytes, hence the same digest.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as out:
        out.write(b'{"format":' + _json(FORMAT) + b',"format_version":' + _json(FORMAT_VERSION)
                  + b',"area":' + _json(info)
                  # Opaque to the app: it sends it back to follow the changes made after this bundle.
                  + b',"cursor":' + _json(changelog.token(FeedCursor(cursor, 0, 0)))
                  + b',"solutions":{"type":"FeatureCollection","features":[')
        solutions = _write_features(out, conn, "solution", area)
        out.write(b']},"sites":{"type":"FeatureCollection","features":[')
        sites = _write_features(out, conn, "site", area)
        out.write(b']},"coverage":' + _json(covered) + b',"places":' + _json(places(conn, area)) + b"}")
    body = buffer.getvalue()
    digest = hashlib.sha256(body).hexdigest()[:32]
    built_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    build_ms = round((time.perf_counter() - started) * 1000)
    conn.execute(text("""
        INSERT INTO app_bundle (digest, area_kind, area_code, cursor, checked_cursor, reference_version,
                                coverage_digest, built_at, build_ms, solutions, sites, size, body)
        VALUES (:digest, :kind, :code, :cursor, :cursor, :reference, :coverage, :built_at, :build_ms,
                :solutions, :sites, :size, :body)
        ON CONFLICT (digest) DO UPDATE SET built_at = EXCLUDED.built_at, checked_cursor = EXCLUDED.checked_cursor"""),
                 {"digest": digest, "kind": area.kind, "code": area.code, "cursor": cursor,
                  "reference": reference_version(conn), "coverage": _digest(covered), "built_at": built_at,
                  "build_ms": build_ms, "solutions": solutions, "sites": sites, "size": len(body), "body": body})
    conn.execute(text("""
        DELETE FROM app_bundle WHERE area_kind = :kind AND area_code = :code AND digest NOT IN (
            SELECT digest FROM app_bundle WHERE area_kind = :kind AND area_code = :code
            ORDER BY built_at DESC, cursor DESC LIMIT :keep)"""),
                 {"kind": area.kind, "code": area.code, "keep": KEEP_PER_AREA})
    return Bundle(digest, area, cursor, built_at, build_ms, solutions, sites, len(body))


# -- freshness ---------------------------------------------------------------------------------------------

BUNDLE_COLUMNS = "digest, area_kind, area_code, cursor, checked_cursor, reference_version, coverage_digest, " \
                 "built_at, build_ms, solutions, sites, size"

LATEST = text(f"""
SELECT {BUNDLE_COLUMNS} FROM app_bundle WHERE area_kind = :kind AND area_code = :code
ORDER BY built_at DESC, cursor DESC LIMIT 1
""")

# Whether a catalogue change between two positions (see changelog) may have touched the area: positions
# (EPSG:3857, before and after each change) inside the area's box, a bulk change (no positions), or changes
# pruned from the log since (then the area is rebuilt, to be safe).
AREA_CHANGED = """
WITH changes AS (SELECT xs, ys FROM catalogue_change
                 WHERE txid >= CAST(CAST(:since AS text) AS xid8) AND txid < CAST(CAST(:current AS text) AS xid8)),
area AS (SELECT ST_Transform(ST_Envelope(geom), 3857) AS box FROM ({area_row}) a)
SELECT (SELECT pruned_through::text::bigint FROM catalogue_change_horizon) >= :since
    OR EXISTS (SELECT 1 FROM changes WHERE xs IS NULL)
    OR EXISTS (SELECT 1 FROM changes, unnest(changes.xs, changes.ys) AS p(x, y), area
               WHERE :everywhere OR ST_Intersects(area.box, ST_SetSRID(ST_MakePoint(p.x, p.y), 3857)))
"""


def _bundle(row) -> Bundle:
    return Bundle(row.digest, BundleArea(row.area_kind, row.area_code), row.cursor, row.built_at, row.build_ms,
                  row.solutions, row.sites, row.size)


def is_current(conn: Connection, area: BundleArea, row) -> bool:
    """Whether the stored bundle `row` still holds exactly what a rebuild would (and, if so, records the cursor
    it was checked at, so that the next check starts from there)."""
    current = changelog.position(conn)
    if row.reference_version != reference_version(conn) or row.coverage_digest != _digest(coverage(conn, area)):
        return False
    if current != row.checked_cursor:
        changed = conn.execute(text(AREA_CHANGED.format(area_row=AREA_ROW[area.kind])),
                               {"since": row.checked_cursor, "current": current, "code": area.code,
                                "everywhere": area.kind == "france"}).scalar()
        if changed:
            return False
        conn.execute(text("UPDATE app_bundle SET checked_cursor = :current WHERE digest = :digest"),
                     {"current": current, "digest": row.digest})
    return True


def current_bundle(conn: Connection, area: BundleArea) -> Bundle:
    """The area's bundle, rebuilt first only when the area changed since the last one."""
    area_info(conn, area)  # NotFound for an unknown area
    row = conn.execute(LATEST, {"kind": area.kind, "code": area.code}).first()
    if row is not None and is_current(conn, area, row):
        return _bundle(row)
    # One builder per area at a time: whoever waited finds the bundle the other built.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('app_bundle:' || :kind || ':' || :code))"),
                 {"kind": area.kind, "code": area.code})
    row = conn.execute(LATEST, {"kind": area.kind, "code": area.code}).first()
    if row is not None and is_current(conn, area, row):
        return _bundle(row)
    return build(conn, area)


def refresh(conn: Connection, areas: list[BundleArea] | None = None) -> list[Bundle]:
    """Rebuild the bundles of `areas` (all by default) that are missing or out of date; the rebuilt ones."""
    rebuilt = []
    for area in areas or all_areas(conn):
        row = conn.execute(LATEST, {"kind": area.kind, "code": area.code}).first()
        if row is None or not is_current(conn, area, row):
            rebuilt.append(build(conn, area))
    return rebuilt


def bundle_body(conn: Connection, area: BundleArea, digest: str) -> bytes:
    # Only what a bundle's URL can hold reaches the database (a NUL byte is not even valid SQL text).
    known_form = (area.kind in AREA_KINDS and re.fullmatch(r"[0-9A-Z]{2,3}", area.code)
                  and re.fullmatch(r"[0-9a-f]{32}", digest))
    body = None if not known_form else conn.execute(text("SELECT body FROM app_bundle WHERE digest = :digest AND area_kind = :kind "
                             "AND area_code = :code"),
                        {"digest": digest, "kind": area.kind, "code": area.code}).scalar()
    if body is None:
        raise NotFound(f"Ce paquet n'existe plus (ou n'a jamais existé) : le manifeste /api/v1/bundles donne "
                       f"l'adresse du paquet à jour.", parameter="digest")
    return bytes(body)


def manifest(conn: Connection) -> list[dict]:
    """Every area with its latest built bundle (None when never built): what an app chooses from."""
    latest = {(r.area_kind, r.area_code): _bundle(r) for r in conn.execute(text(f"""
        SELECT DISTINCT ON (area_kind, area_code) {BUNDLE_COLUMNS} FROM app_bundle
        ORDER BY area_kind, area_code, built_at DESC, cursor DESC"""))}
    names = {(r.kind, r.code): r.name for r in conn.execute(text("""
        SELECT 'region' AS kind, code, name FROM region UNION ALL SELECT 'departement', code, name FROM departement"""))}
    names[("france", FRANCE)] = "France"
    return [{"area": area, "name": names[(area.kind, area.code)], "bundle": latest.get((area.kind, area.code))}
            for area in all_areas(conn)]
