"""A small street basemap archive for the tests, in the Protomaps basemap schema (the one a Protomaps build of
OpenStreetMap has), made from our own reference geography around Lyon: `earth` (the land: départements),
`boundaries` (their outlines) and `places` (communes at their town hall, with French names). It stands for the
archive an operator would provide; there are no streets in it, which the tests do not need to prove the
drawing."""
from __future__ import annotations

from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import text

from mapservice.tiles import make_tile

DEPARTEMENTS = ("01", "38", "42", "69")
TILE = text("""
WITH tile AS (SELECT ST_TileEnvelope(:z, :x, :y) AS box)
SELECT coalesce((SELECT ST_AsMVT(e, 'earth', 4096, 'geom') FROM (
           SELECT 'earth' AS kind, ST_AsMVTGeom(ST_Transform(d.geom, 3857), tile.box, 4096, 64, true) AS geom
           FROM departement d, tile WHERE d.code = ANY(:codes)
             AND ST_Transform(d.geom, 3857) && tile.box) e WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(b, 'boundaries', 4096, 'geom') FROM (
           SELECT 6 AS kind_detail, 'region' AS kind,
                  ST_AsMVTGeom(ST_Boundary(ST_Transform(d.geom, 3857)), tile.box, 4096, 64, true) AS geom
           FROM departement d, tile WHERE d.code = ANY(:codes)
             AND ST_Transform(d.geom, 3857) && tile.box) b WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(p, 'places', 4096, 'geom') FROM (
           SELECT c.name, c.name AS "name:fr", 'locality' AS kind, c.population,
                  CASE WHEN c.population > 100000 THEN 1 WHEN c.population > 20000 THEN 4 ELSE 8 END AS min_zoom,
                  CASE WHEN c.population > 100000 THEN 10 WHEN c.population > 20000 THEN 8 ELSE 5 END
                      AS population_rank,
                  ST_AsMVTGeom(ST_Transform(c.town_hall, 3857), tile.box, 4096, 64, true) AS geom
           FROM commune c, tile WHERE c.departement_code = ANY(:codes) AND c.kind = 'COM'
             AND ST_Transform(c.town_hall, 3857) && tile.box
             AND :z >= CASE WHEN c.population > 100000 THEN 1 WHEN c.population > 20000 THEN 4 ELSE 8 END
           ORDER BY c.population DESC NULLS LAST LIMIT 200) p WHERE geom IS NOT NULL), '') AS mvt
""")
TILES = text("""
SELECT DISTINCT x, y FROM (SELECT ST_Transform(ST_Envelope(ST_Union(geom)), 3857) AS box FROM departement
                           WHERE code = ANY(:codes)) a,
     LATERAL generate_series(floor((ST_XMin(box) + 20037508.342789244) / (40075016.68557849 / (1 << :z)))::int,
                             floor((ST_XMax(box) + 20037508.342789244) / (40075016.68557849 / (1 << :z)))::int) x,
     LATERAL generate_series(floor((20037508.342789244 - ST_YMax(box)) / (40075016.68557849 / (1 << :z)))::int,
                             floor((20037508.342789244 - ST_YMin(box)) / (40075016.68557849 / (1 << :z)))::int) y
""")


def build_street_archive(engine, path: Path, maxzoom: int = 10) -> Path:
    found = []
    with engine.connect() as conn:
        for z in range(0, maxzoom + 1):
            for x, y in conn.execute(TILES, {"z": z, "codes": list(DEPARTEMENTS)}):
                mvt = bytes(conn.execute(TILE, {"z": z, "x": x, "y": y, "codes": list(DEPARTEMENTS)}).scalar())
                if mvt:
                    found.append((zxy_to_tileid(z, x, y), make_tile(mvt).gzipped))
    with open(path, "wb") as fh:
        writer = Writer(fh)
        for tile_id, data in sorted(found):
            writer.write_tile(tile_id, data)
        writer.finalize({"tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                         "min_lon_e7": 40000000, "min_lat_e7": 446000000, "max_lon_e7": 60000000,
                         "max_lat_e7": 465000000, "center_zoom": 9, "center_lon_e7": 48357000,
                         "center_lat_e7": 457640000},
                        {"name": "Exemple de fond de rues (test)", "attribution": "exemple",
                         "vector_layers": [{"id": name, "fields": {}} for name in ("earth", "boundaries", "places")]})
    return path
