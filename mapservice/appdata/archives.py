"""PMTiles archives of the vector tiles — the unfiltered catalogue (`solutions`) and the basemap — for all of
France and per région: one file each that any static host or CDN serves with HTTP range requests, and that
MapLibre (pmtiles protocol) and the page read directly. The live tile endpoint stays for filtered maps.

Every tile is rendered by the very SQL of the live endpoint (mapservice.tiles), so an archive holds the same
bytes the endpoint would send at the time it was built. Only tiles with content are written (the rest are
204 live, absent here). A small JSON file beside each archive records what it was built from, so that
`refresh` rebuilds only the archives whose area the catalogue (or the reference geography) changed since.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

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


def archive_name(tileset: str, area: BundleArea) -> str:
    return f"{tileset}-{area.code}"


def archive_areas(conn: Connection) -> list[BundleArea]:
    """France, then each région."""
    return [BundleArea("france", FRANCE)] + [
        BundleArea("region", code) for code in conn.execute(text("SELECT code FROM region ORDER BY code")).scalars()]


# -- which tiles have content ------------------------------------------------------------------------------

# Tiles of zoom :z crossing the area's box that show a visible site (inside the area or not: the archive of a
# région holds whole tiles, as the live endpoint sends them): the tiles holding a site, and deeper than the
# clustering zooms (margin: the tile buffer, in tile units) those whose buffer reaches one.
SITE_TILES = f"""
WITH area AS (SELECT ST_Transform(ST_Envelope(geom), 3857) AS box FROM ({{area_row}}) a),
-- (a sliver more than the margin: a site on a tile edge counts for both sides, as with && live)
sized AS (SELECT {tiles.WORLD} / (1 << :z) AS size, CAST(:margin AS float8) / {tiles.EXTENT} + 1e-9 AS m)
SELECT DISTINCT tx, ty
FROM site_summary s, area, sized,
     generate_series(floor((ST_X(s.geom_3857) + {HALF}) / size - m)::int,
                     floor((ST_X(s.geom_3857) + {HALF}) / size + m)::int) tx,
     generate_series(floor(({HALF} - ST_Y(s.geom_3857)) / size - m)::int,
                     floor(({HALF} - ST_Y(s.geom_3857)) / size + m)::int) ty
WHERE s.geom_3857 && ST_Expand(area.box, size * 2)
  AND tx BETWEEN 0 AND (1 << :z) - 1 AND ty BETWEEN 0 AND (1 << :z) - 1
  AND ST_TileEnvelope(:z, tx, ty) && area.box
"""

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
    found = []
    for z in range(0, maxzoom + 1):
        if tileset == "solutions":
            margin = 0 if z <= cluster_max_zoom else tiles.BUFFER
            rows = conn.execute(text(SITE_TILES.format(area_row=AREA_ROW[area.kind])),
                                {"z": z, "margin": margin, "code": area.code})
        else:
            rows = conn.execute(text(AREA_TILES), {"z": z, "code": area.code, "everywhere": area.kind == "france"})
        found.extend((z, x, y) for x, y in rows)
    return found


def render(conn: Connection, tileset: str, z: int, x: int, y: int, settings: ArchiveSettings,
           day: dt.date) -> bytes:
    """The tile as the live endpoint renders it, unfiltered (raw MVT, empty when nothing is there)."""
    if tileset == "solutions":
        sql, binds = tiles.solutions_tile_sql(SolutionFilters(), z, settings.cluster_max_zoom)
        binds = {**binds, "today": day}
    else:
        sql, binds = tiles.BASEMAP_TILE, {}
    row = conn.execute(text(sql), {"z": z, "x": x, "y": y, "max_features": settings.max_features, **binds}).one()
    return bytes(row.mvt)


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


def _e7(value: float) -> int:
    return round(value * 10_000_000)


def build(conn: Connection, tileset: str, area: BundleArea, settings: ArchiveSettings) -> Archive:
    """Render the area's tiles and write them to `<directory>/<tileset>-<code>.pmtiles` (replaced atomically),
    with its record beside it. `conn` should see one snapshot (REPEATABLE READ) for a consistent archive."""
    started = time.perf_counter()
    info = area_info(conn, area)
    cursor = changelog.position(conn)
    reference = reference_version(conn)
    day = tiles.today()
    maxzoom = min(settings.maxzoom, tiles.TILESETS[tileset].maxzoom)
    coordinates = candidate_tiles(conn, tileset, area, maxzoom, settings.cluster_max_zoom)
    ordered = sorted((zxy_to_tileid(z, x, y), z, x, y) for z, x, y in coordinates)
    name = archive_name(tileset, area)
    settings.directory.mkdir(parents=True, exist_ok=True)
    path = settings.directory / f"{name}.pmtiles"
    partial = path.with_suffix(".pmtiles.part")
    written = 0
    with open(partial, "wb") as fh:
        writer = Writer(fh)
        for tile_id, z, x, y in ordered:
            mvt = render(conn, tileset, z, x, y, settings, day)
            if mvt:
                writer.write_tile(tile_id, tiles.make_tile(mvt).gzipped)
                written += 1
        west, south, east, north = info["bbox"]
        ts = tiles.TILESETS[tileset]
        writer.finalize({
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_lon_e7": _e7(west), "min_lat_e7": _e7(south), "max_lon_e7": _e7(east), "max_lat_e7": _e7(north),
            "center_zoom": min(6, maxzoom), "center_lon_e7": _e7((west + east) / 2),
            "center_lat_e7": _e7((south + north) / 2),
        }, {
            "name": f"{ts.title} — {info['name']}", "description": ts.description, "attribution": tiles.ATTRIBUTION,
            "vector_layers": [
                {**layer, "maxzoom": min(layer["maxzoom"], settings.cluster_max_zoom, maxzoom)}
                if layer["id"] == "clusters" else {**layer, "maxzoom": min(layer["maxzoom"], maxzoom)}
                for layer in ts.vector_layers],
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
                      minzoom=0, maxzoom=maxzoom, day=day.isoformat())
    _write_record(archive)
    return archive


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
        found.append(Archive(path=path, area=area, **record))
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
            tilesets: tuple[str, ...] = TILESETS) -> list[Archive]:
    """Build the archives of `areas` (France and every région by default) that are missing or out of date."""
    existing = {a.name: a for a in built(settings.directory)}
    rebuilt = []
    for area in areas or archive_areas(conn):
        for tileset in tilesets:
            archive = existing.get(archive_name(tileset, area))
            if archive is None or not is_current(conn, archive):
                rebuilt.append(build(conn, tileset, area, settings))
    return rebuilt
