"""PMTiles archives of the vector tiles — the unfiltered catalogue (`solutions`) and the basemap — for all of
France and per région: one file each that any static host or CDN serves with HTTP range requests, and that
MapLibre (pmtiles protocol) and the page read directly. The live tile endpoint stays for filtered maps.

Every tile is rendered by the very SQL of the live endpoint (mapservice.tiles), so an archive holds the same
bytes the endpoint would send at the time it was built. Only tiles with content are written (the rest are
204 live, absent here). A small JSON file beside each archive records what it was built from, so that
`refresh` rebuilds only the archives whose area the catalogue (or the reference geography) changed since.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import os
import queue
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import tiles
from ..values import SolutionFilters
from . import changelog
from .bundles import AREA_CHANGED, AREA_ROW, FRANCE, BundleArea, area_info, reference_version

TILESETS = ("solutions", "basemap")
HALF = tiles.WORLD / 2


@dataclass(frozen=True)
class ArchiveSettings:
    directory: Path
    maxzoom: int  # deepest zoom of the catalogue archives (the basemap stops at its own maxzoom)
    cluster_max_zoom: int
    max_features: int
    connections: int = 1  # rendering at once, when build() is given a way to open more


def archive_name(tileset: str, area: BundleArea) -> str:
    return f"{tileset}-{area.code}"


def archive_areas(conn: Connection) -> list[BundleArea]:
    """France, then each région."""
    return [BundleArea("france", FRANCE)] + [
        BundleArea("region", code) for code in conn.execute(text("SELECT code FROM region ORDER BY code")).scalars()]


# -- which tiles have content ------------------------------------------------------------------------------

# The area's box in EPSG:3857, computed once (France's is the box of every région).
AREA_BOX = """
SELECT ST_XMin(box) AS xmin, ST_YMin(box) AS ymin, ST_XMax(box) AS xmax, ST_YMax(box) AS ymax
FROM (SELECT ST_Transform(ST_Envelope(geom), 3857) AS box FROM ({area_row}) a) area
"""
# Where the visible sites are, read once: the tiles with content at every zoom follow from them.
SITE_POSITIONS = "SELECT array_agg(ST_X(geom_3857)) AS xs, array_agg(ST_Y(geom_3857)) AS ys FROM site_summary"
# `&&` compares boxes rounded outwards to single precision (a metre or so at these coordinates): a tile is
# taken when its box comes within this many metres of the area's, so that none `&&` says crosses it is missed.
BOX_SLIVER_M = 16.0


def site_tiles(xs: np.ndarray, ys: np.ndarray, z: int, margin: int,
               box: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """The tiles (x, y) of zoom `z` crossing `box` (xmin, ymin, xmax, ymax, EPSG:3857) that show one of the
    sites at (xs, ys) — inside the area or not: the archive of a région holds whole tiles, as the live endpoint
    sends them. The tiles holding a site, and with a `margin` (tile units: the buffer deeper than the clustering
    zooms) those whose margin reaches one; a site on a tile edge counts for both sides, as with `&&` live."""
    n = 1 << z
    size = tiles.WORLD / n
    m = margin / tiles.EXTENT + 1e-9
    fx, fy = (xs + HALF) / size, (HALF - ys) / size
    keys = []
    for tx in (np.floor(fx - m), np.floor(fx + m)):
        for ty in (np.floor(fy - m), np.floor(fy + m)):
            inside = (tx >= 0) & (tx < n) & (ty >= 0) & (ty < n)
            keys.append(tx[inside].astype(np.int64) * n + ty[inside].astype(np.int64))
    found = np.unique(np.concatenate(keys))
    tx, ty = found // n, found % n
    xmin, ymin, xmax, ymax = box
    west, north = tx * size - HALF, HALF - ty * size
    crossing = ((west <= xmax + BOX_SLIVER_M) & (west + size >= xmin - BOX_SLIVER_M)
                & (north - size <= ymax + BOX_SLIVER_M) & (north >= ymin - BOX_SLIVER_M))
    return list(zip(tx[crossing].tolist(), ty[crossing].tolist()))


# Tiles of zoom :z crossing the box of a département of the area (the sea between them stays out).
AREA_TILES = f"""
WITH boxes AS (
    SELECT ST_Transform(ST_Envelope(d.geom), 3857) AS box FROM departement d
    WHERE d.geom IS NOT NULL AND (:everywhere OR d.region_code = :code)
), sized AS (SELECT {tiles.WORLD} / (1 << :z) AS size)
SELECT DISTINCT tx, ty FROM boxes, sized,
     generate_series(greatest(0, floor((ST_XMin(box) + {HALF}) / size)::int),
                     least((1 << :z) - 1, floor((ST_XMax(box) + {HALF}) / size)::int)) tx,
     generate_series(greatest(0, floor(({HALF} - ST_YMax(box)) / size)::int),
                     least((1 << :z) - 1, floor(({HALF} - ST_YMin(box)) / size)::int)) ty
"""


def candidate_tiles(conn: Connection, tileset: str, area: BundleArea, maxzoom: int,
                    cluster_max_zoom: int) -> list[tuple[int, int, int]]:
    """The tiles (z, x, y) of the area that may have content, zoom by zoom; the rest are empty live (204)."""
    found = []
    if tileset == "solutions":
        box = tuple(conn.execute(text(AREA_BOX.format(area_row=AREA_ROW[area.kind])), {"code": area.code}).one())
        positions = conn.execute(text(SITE_POSITIONS)).one()
        xs, ys = np.array(positions.xs or [], dtype=np.float64), np.array(positions.ys or [], dtype=np.float64)
        for z in range(0, maxzoom + 1):
            margin = 0 if z <= tiles.clusters_max_zoom(cluster_max_zoom) else tiles.BUFFER
            found.extend((z, x, y) for x, y in site_tiles(xs, ys, z, margin, box))
        return found
    for z in range(0, maxzoom + 1):
        rows = conn.execute(text(AREA_TILES), {"z": z, "code": area.code, "everywhere": area.kind == "france"})
        found.extend((z, x, y) for x, y in rows)
    return found


# Tiles rendered per statement: the live endpoint's SQL of one tile applied to each of a batch of coordinates
# of one zoom (LATERAL), so that a tile costs its rendering rather than a round trip and a plan.
BATCH_TILES = 256


def _per_coordinate(sql: str) -> str:
    """The SQL of one tile (binds :x, :y) run for each coordinate of the arrays :xs, :ys."""
    one = re.sub(r"(?<!:):([xy])\b", r"wanted.\1", sql)
    return (f"SELECT wanted.x, wanted.y, tile.mvt "
            f"FROM unnest(CAST(:xs AS int[]), CAST(:ys AS int[])) AS wanted(x, y) "
            f"CROSS JOIN LATERAL ({one}) AS tile")


def render_batch(conn: Connection, tileset: str, z: int, coordinates: list[tuple[int, int]],
                 settings: ArchiveSettings, day: dt.date) -> dict[tuple[int, int], bytes]:
    """The tiles (x, y) of zoom `z` as the live endpoint renders them, unfiltered (raw MVT, empty when nothing
    is there), in one statement."""
    if tileset == "solutions":
        sql, binds = tiles.solutions_tile_sql(SolutionFilters(), z, settings.cluster_max_zoom)
        binds = {**binds, "today": day}
    else:
        sql, binds = tiles.BASEMAP_TILE, {}
    rows = conn.execute(text(_per_coordinate(sql)), {
        "xs": [x for x, _ in coordinates], "ys": [y for _, y in coordinates], "z": z,
        "max_features": settings.max_features, **binds})
    return {(row.x, row.y): bytes(row.mvt) for row in rows}


# -- building ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Archive:
    name: str
    tileset: str
    area: BundleArea
    path: Path
    cursor: int
    reference_version: str | None
    built_at: str
    build_s: float
    tiles: int
    size: int
    minzoom: int
    maxzoom: int
    day: str  # tiles say how many days ago a site was checked: as of this day
    # per zoom: {"zoom", "candidates" (tiles that may have content), "tiles" (written), "render_s"}
    zooms: tuple[dict, ...] = ()


def _e7(value: float) -> int:
    return round(value * 10_000_000)


def build(conn: Connection, tileset: str, area: BundleArea, settings: ArchiveSettings,
          connect: Callable[[], Connection] | None = None) -> Archive:
    """Render the area's tiles and write them to `<directory>/<tileset>-<code>.pmtiles` (replaced atomically),
    with its record beside it. `conn` should see one snapshot (REPEATABLE READ) for a consistent archive. Given
    `connect` (a new connection to the same database), the tiles are rendered on `settings.connections`
    connections at once, the others in `conn`'s snapshot (conn must then be in a REPEATABLE READ transaction)."""
    started = time.perf_counter()
    info = area_info(conn, area)
    cursor = changelog.position(conn)
    reference = reference_version(conn)
    day = tiles.today()
    maxzoom = min(settings.maxzoom, tiles.TILESETS[tileset].maxzoom)
    coordinates = candidate_tiles(conn, tileset, area, maxzoom, settings.cluster_max_zoom)
    # Hilbert order, which PMTiles readers expect: zoom by zoom, neighbours close together.
    ordered = sorted((zxy_to_tileid(z, x, y), z, x, y) for z, x, y in coordinates)
    name = archive_name(tileset, area)
    settings.directory.mkdir(parents=True, exist_ok=True)
    path = settings.directory / f"{name}.pmtiles"
    partial = path.with_suffix(".pmtiles.part")
    zooms = {z: {"zoom": z, "candidates": 0, "tiles": 0, "render_s": 0.0} for z in range(0, maxzoom + 1)}
    with open(partial, "wb") as fh, Renderers(conn, connect, settings.connections) as renderers:
        writer = Writer(fh)

        def gzipped(batch):
            """The batch's tiles, in order, gzipped as the live endpoint sends them (empty: no content)."""
            with renderers.connection() as renderer:
                rendered = render_batch(renderer, tileset, batch[0][1], [(x, y) for _, _, x, y in batch],
                                        settings, day)
            return [(tile_id, z, tiles.make_tile(rendered[(x, y)]).gzipped) for tile_id, z, x, y in batch]

        # Batches are rendered ahead on the connections and written in order (PMTiles: the Hilbert order);
        # a zoom's time runs from the end of the previous one to its last tile written.
        since = time.perf_counter()
        for batch in renderers.map(gzipped, _batches(ordered)):
            z = batch[0][1]
            for tile_id, _, data in batch:
                if data:
                    writer.write_tile(tile_id, data)
                    zooms[z]["tiles"] += 1
            zooms[z]["candidates"] += len(batch)
            now = time.perf_counter()
            zooms[z]["render_s"] += now - since
            since = now
        written = sum(stats["tiles"] for stats in zooms.values())
        west, south, east, north = info["bbox"]
        ts = tiles.TILESETS[tileset]
        writer.finalize({
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_lon_e7": _e7(west), "min_lat_e7": _e7(south), "max_lon_e7": _e7(east), "max_lat_e7": _e7(north),
            "center_zoom": min(6, maxzoom), "center_lon_e7": _e7((west + east) / 2),
            "center_lat_e7": _e7((south + north) / 2),
        }, {
            "name": f"{ts.title} — {info['name']}", "description": ts.description, "attribution": tiles.ATTRIBUTION,
            "vector_layers": ts.layers_as_cut(settings.cluster_max_zoom, maxzoom),
            "mapservice": {"cursor": str(cursor), "reference_version": reference, "day": day.isoformat()},
        })
    if not written:
        partial.unlink()
        raise ValueError(f"no tile has content in {name}")
    os.replace(partial, path)
    archive = Archive(name=name, tileset=tileset, area=area, path=path, cursor=cursor,
                      reference_version=reference,
                      built_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                      build_s=round(time.perf_counter() - started, 2), tiles=written, size=path.stat().st_size,
                      minzoom=0, maxzoom=maxzoom, day=day.isoformat(),
                      zooms=tuple({**stats, "render_s": round(stats["render_s"], 2)} for stats in zooms.values()))
    _write_record(archive)
    return archive


class Renderers:
    """The connections tiles are rendered on: `conn`, and with `connect` up to `count` - 1 more that see the
    same snapshot (pg_export_snapshot); each renders one batch at a time, on a thread of its own."""

    def __init__(self, conn: Connection, connect: Callable[[], Connection] | None, count: int):
        self._conn, self._connect = conn, connect
        self._count = max(1, count) if connect is not None else 1
        self._others: list[Connection] = []
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Renderers:
        self._free.put(self._conn)
        if self._count > 1:
            snapshot = self._conn.execute(text("SELECT pg_export_snapshot()")).scalar()
            try:
                for _ in range(self._count - 1):
                    other = self._connect().execution_options(isolation_level="REPEATABLE READ")
                    self._others.append(other)
                    other.begin()
                    other.execute(text("SET TRANSACTION SNAPSHOT :snapshot"), {"snapshot": snapshot})
                    self._free.put(other)
            except BaseException:
                self.__exit__()
                raise
            self._pool = ThreadPoolExecutor(self._count, thread_name_prefix="archive")
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        for other in self._others:
            other.close()  # it only read: rolled back

    @contextlib.contextmanager
    def connection(self):
        conn = self._free.get()
        try:
            yield conn
        finally:
            self._free.put(conn)

    def map(self, function, items):
        """function(item) for each item, in order: on the threads when there are several connections, a few
        items ahead of the one consumed."""
        if self._pool is None:
            yield from map(function, items)
            return
        ahead: collections.deque = collections.deque()
        for item in items:
            ahead.append(self._pool.submit(function, item))
            if len(ahead) > 2 * self._count:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _batches(ordered: list[tuple[int, int, int, int]]):
    """Consecutive runs of at most BATCH_TILES tiles of one zoom."""
    batch = []
    for tile in ordered:
        if batch and (len(batch) == BATCH_TILES or tile[1] != batch[0][1]):
            yield batch
            batch = []
        batch.append(tile)
    if batch:
        yield batch


def _record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _write_record(archive: Archive) -> None:
    record = {k: v for k, v in archive.__dict__.items() if k not in ("path", "area")}
    record["area"] = {"kind": archive.area.kind, "code": archive.area.code}
    partial = _record_path(archive.path).with_suffix(".json.part")
    partial.write_text(json.dumps(record, ensure_ascii=False, indent=1))
    os.replace(partial, _record_path(archive.path))


def built(directory: Path) -> list[Archive]:
    """The archives present in `directory`, from their records."""
    found = []
    for record_path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        path = record_path.with_suffix(".pmtiles")
        if not path.exists():
            continue
        record = json.loads(record_path.read_text())
        area = BundleArea(**record.pop("area"))
        found.append(Archive(path=path, area=area, **{**record, "zooms": tuple(record.get("zooms", ()))}))
    return found


def find(directory: Path, name: str) -> Archive | None:
    return next((a for a in built(directory) if a.name == name), None)


def is_current(conn: Connection, archive: Archive) -> bool:
    """Whether nothing the archive shows changed since it was built (same day too: tiles count days)."""
    if archive.tileset == "basemap":
        return archive.reference_version == reference_version(conn)
    if archive.day != tiles.today().isoformat():
        return False
    current = changelog.position(conn)
    if current == archive.cursor:
        return True
    return not conn.execute(text(AREA_CHANGED.format(area_row=AREA_ROW[archive.area.kind])),
                            {"since": archive.cursor, "current": current, "code": archive.area.code,
                             "everywhere": archive.area.kind == "france"}).scalar()


def refresh(conn: Connection, settings: ArchiveSettings, areas: list[BundleArea] | None = None,
            tilesets: tuple[str, ...] = TILESETS, connect: Callable[[], Connection] | None = None) -> list[Archive]:
    """Build the archives of `areas` (France and every région by default) that are missing or out of date
    (`connect`: see build)."""
    existing = {a.name: a for a in built(settings.directory)}
    rebuilt = []
    for area in areas or archive_areas(conn):
        for tileset in tilesets:
            archive = existing.get(archive_name(tileset, area))
            if archive is None or not is_current(conn, archive):
                rebuilt.append(build(conn, tileset, area, settings, connect))
    return rebuilt
