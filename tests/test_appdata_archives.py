"""PMTiles archives of the vector tiles: read back out of the archive (as a static host or CDN would serve it,
with range requests) they are exactly the live endpoint's tiles; TileJSON advertises them; a refresh rebuilds
only the archives of the area that changed."""
from __future__ import annotations

import gzip

import pytest
from pmtiles.reader import MemorySource, Reader, all_tiles
from sqlalchemy import text

from mapservice import tiles
from mapservice.appdata import archives, refresh
from mapservice.appdata.bundles import AREA_ROW, FRANCE, BundleArea

from .conftest import dispose_app, make_test_app
from .test_tiles import tile_of

BRETAGNE = BundleArea("region", "53")
CORSE = BundleArea("region", "94")
RENNES = (-1.6778, 48.1173)


@pytest.fixture(scope="module")
def archive_app(database_url, tmp_path_factory):
    """The app, with the catalogue archive of Bretagne (z0-14) and the basemap archive of Corse built (on two
    connections sharing one snapshot, as the refresher does)."""
    app = make_test_app(database_url, appdata={"archive_dir": str(tmp_path_factory.mktemp("archives"))})
    settings = refresh.archive_settings(app.config["SETTINGS"])
    assert settings.connections == 2
    engine = app.extensions["mapservice.engine"]
    for tileset, area in (("solutions", BRETAGNE), ("basemap", CORSE)):
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            archives.build(conn, tileset, area, settings, connect=engine.connect)
    yield app
    dispose_app(app)


def live_tile(client, tileset: str, z: int, x: int, y: int) -> bytes | None:
    response = client.get(f"/tiles/{tileset}/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    assert response.status_code in (200, 204)
    return response.data if response.status_code == 200 else None


def assert_served_archive_is_live(client, name: str, tileset: str = "solutions") -> int:
    """Every tile of the archive `name` as the app serves it equals the live endpoint's; returns their count."""
    source = MemorySource(client.get(f"/tiles/archives/{name}.pmtiles").data)
    count = 0
    for (z, x, y), data in all_tiles(source):
        assert gzip.decompress(data) == live_tile(client, tileset, z, x, y), (z, x, y)
        count += 1
    return count


def http_reader(client, url: str) -> Reader:
    """A PMTiles reader that fetches the archive the way MapLibre's pmtiles protocol does: byte ranges."""
    def get_bytes(offset: int, length: int) -> bytes:
        response = client.get(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        assert response.status_code == 206
        return response.data
    return Reader(get_bytes)


@pytest.mark.parametrize("tileset, area", [("solutions", BRETAGNE), ("basemap", CORSE)])
def test_every_tile_of_the_archive_is_the_live_endpoints_tile(archive_app, tileset, area):
    client = archive_app.test_client()
    whole = client.get(f"/tiles/archives/{tileset}-{area.code}.pmtiles").data
    assert whole[:7] == b"PMTiles"
    header = Reader(MemorySource(whole)).header()
    assert header["max_zoom"] == (14 if tileset == "solutions" else 12)
    count = assert_served_archive_is_live(client, f"{tileset}-{area.code}", tileset)
    assert count == header["addressed_tiles_count"] > 20


def test_no_live_tile_of_the_area_is_missing_from_the_archive(archive_app):
    """Around Rennes, every tile crossing Bretagne's box is in the archive exactly when the live endpoint has
    content for it."""
    client = archive_app.test_client()
    reader = http_reader(client, "/tiles/archives/solutions-53.pmtiles")
    engine = archive_app.extensions["mapservice.engine"]
    for z in (5, 9, 12, 14):
        _, cx, cy = tile_of(*RENNES, z)
        with engine.connect() as conn:
            in_area = conn.execute(text("""
                SELECT x, y FROM generate_series(:cx - 2, :cx + 2) x, generate_series(:cy - 2, :cy + 2) y, region r
                WHERE r.code = '53' AND ST_TileEnvelope(:z, x, y) && ST_Transform(ST_Envelope(r.geom), 3857)"""),
                                   {"z": z, "cx": cx, "cy": cy}).all()
        assert len(in_area) >= (1 if z == 5 else 10)
        for x, y in in_area:
                live = live_tile(client, "solutions", z, x, y)
                stored = reader.get(z, x, y)
                assert (gzip.decompress(stored) if stored else None) == live, (z, x, y)


# The tiles that may have content, by the live SQL's own test (`&&`, in PostGIS): those crossing the area's box
# whose box, grown by the margin, holds a site (a sliver more: a site on an edge counts for both sides).
TILES_WITH_A_SITE = f"""
WITH area AS MATERIALIZED (SELECT ST_Transform(ST_Envelope(geom), 3857) AS box FROM ({{area_row}}) a),
sized AS (SELECT {tiles.WORLD} / (1 << :z) AS size, CAST(:margin AS float8) / {tiles.EXTENT} + 1e-9 AS m)
SELECT DISTINCT tx, ty
FROM site_summary s, area, sized,
     generate_series(floor((ST_X(s.geom_3857) + {archives.HALF}) / size - m)::int,
                     floor((ST_X(s.geom_3857) + {archives.HALF}) / size + m)::int) tx,
     generate_series(floor(({archives.HALF} - ST_Y(s.geom_3857)) / size - m)::int,
                     floor(({archives.HALF} - ST_Y(s.geom_3857)) / size + m)::int) ty
WHERE tx BETWEEN 0 AND (1 << :z) - 1 AND ty BETWEEN 0 AND (1 << :z) - 1
  AND ST_TileEnvelope(:z, tx, ty) && area.box
  AND ST_TileEnvelope(:z, tx, ty, margin => :margin / {tiles.EXTENT}.0) && s.geom_3857
"""


@pytest.mark.parametrize("area", [BRETAGNE, BundleArea("france", FRANCE)])
def test_the_archive_looks_at_every_tile_where_the_live_sql_finds_a_site(engine, area):
    """The tiles worked out from the sites' positions (the archive renders only those; the others are 204
    live) are, zoom by zoom, the tiles whose box holds a site by PostGIS's own `&&`."""
    with engine.connect() as conn:
        candidates = archives.candidate_tiles(conn, "solutions", area, 14, cluster_max_zoom=11)
        for z in range(0, 15):
            expected = set(map(tuple, conn.execute(text(TILES_WITH_A_SITE.format(area_row=AREA_ROW[area.kind])), {
                "z": z, "margin": 0 if z <= tiles.clusters_max_zoom(11) else tiles.BUFFER,
                "code": area.code}).all()))
            assert {(x, y) for cz, x, y in candidates if cz == z} == expected, z


def test_archives_are_served_with_range_requests_and_advertised_in_tilejson(archive_app):
    client = archive_app.test_client()
    part = client.get("/tiles/archives/solutions-53.pmtiles", headers={"Range": "bytes=0-126"})
    assert part.status_code == 206 and len(part.data) == 127 and part.data[:7] == b"PMTiles"
    assert part.headers["Accept-Ranges"] == "bytes" and part.headers["ETag"]
    advertised = client.get("/tiles/solutions.json").get_json()["pmtiles"]
    assert [a["area"] for a in advertised] == [{"kind": "region", "code": "53"}]
    assert advertised[0]["url"].endswith("/tiles/archives/solutions-53.pmtiles")
    assert advertised[0]["maxzoom"] == 14
    index = client.get("/tiles/").get_json()
    assert {t["name"]: len(t["pmtiles"]) for t in index["tilesets"]} == {"solutions": 1, "basemap": 1}
    assert client.get("/tiles/archives/solutions-11.pmtiles").status_code == 404


def test_a_refresh_rebuilds_only_the_archives_whose_area_changed(fresh_database_url, tmp_path):
    app = make_test_app(fresh_database_url, appdata={"archive_dir": str(tmp_path), "archive_maxzoom": 7})
    settings = refresh.archive_settings(app.config["SETTINGS"])
    engine = app.extensions["mapservice.engine"]
    try:
        areas = [BRETAGNE, CORSE]
        with engine.connect() as conn:
            assert len(archives.refresh(conn, settings, areas, ("solutions",))) == 2
            assert archives.refresh(conn, settings, areas, ("solutions",)) == []
        with engine.begin() as conn:
            conn.execute(text("""UPDATE site SET status = 'draft' WHERE id = (
                SELECT min(site.id) FROM site WHERE commune_code LIKE '35%' AND status = 'published')"""))
        with engine.connect() as conn:
            rebuilt = archives.refresh(conn, settings, areas, ("solutions",))
        assert [a.name for a in rebuilt] == ["solutions-53"]
        assert_served_archive_is_live(app.test_client(), "solutions-53")
    finally:
        dispose_app(app)


def test_the_archive_command_builds_one_archive(runner, database_url, monkeypatch, tmp_path):
    from mapservice.cli import cli

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MAPSERVICE_APPDATA_ARCHIVE_DIR", str(tmp_path))
    result = runner.invoke(cli, ["appdata", "archive", "solutions", "--region", "94", "--maxzoom", "8"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "solutions-94.pmtiles").exists() and "tiles" in result.output
    header = Reader(MemorySource((tmp_path / "solutions-94.pmtiles").read_bytes())).header()
    assert header["max_zoom"] == 8


def test_the_refresh_command_builds_missing_bundles_then_nothing(runner, fresh_database_url, monkeypatch):
    from mapservice.cli import cli

    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    first = runner.invoke(cli, ["appdata", "refresh", "--no-archives"])
    assert first.exit_code == 0, first.output
    assert first.output.count("bundle ") >= 1 + 18 + 101
    second = runner.invoke(cli, ["appdata", "refresh", "--no-archives"])
    assert second.exit_code == 0 and second.output == ""


def test_the_refresher_builds_every_archive_then_only_what_changed(database_url, tmp_path):
    """What the background thread runs: every area's archives, each on two connections in its own snapshot;
    then none while nothing changed."""
    app = make_test_app(database_url, appdata={"archive_dir": str(tmp_path), "archive_maxzoom": 4})
    settings, engine = app.config["SETTINGS"], app.extensions["mapservice.engine"]
    try:
        built = []
        assert refresh.refresh(engine, settings, with_bundles=False, log=built.append)
        assert len(built) == 2 * (1 + 18) and all(" tiles, " in line for line in built)
        assert {a.name for a in archives.built(tmp_path)} >= {"solutions-FR", "basemap-FR", "solutions-84"}
        again = []
        assert refresh.refresh(engine, settings, with_bundles=False, log=again.append)
        assert again == []
        assert_served_archive_is_live(app.test_client(), "solutions-FR")
    finally:
        dispose_app(app)
