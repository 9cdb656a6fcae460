"""Vector tiles, decoded as a map client would, checked against the catalogue rows themselves."""
from __future__ import annotations

import datetime as dt
import gzip
import math
import random
import time
from collections import Counter

import jsonschema
import mapbox_vector_tile
import pytest
from pyproj import Transformer
from sqlalchemy import event, text

from mapservice import tiles
from mapservice.taxonomy import SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES, VOIES
from mapservice.values import SolutionFilters

from .conftest import dispose_app, make_test_app

TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
WORLD = 2 * 20037508.342789244
EXTENT = 4096
CLUSTER_MAX_ZOOM = 11  # the default setting

LYON = (4.8320, 45.7578)
PARIS_11 = (2.379521, 48.858501)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    x, y = TO_MERCATOR.transform(lon, lat)
    size = WORLD / 2 ** z
    return z, math.floor((x + WORLD / 2) / size), math.floor((WORLD / 2 - y) / size)


def position_in_tile(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Where a point lands in tile units (0..4096, y down), whether or not it is inside the tile."""
    mx, my = TO_MERCATOR.transform(lon, lat)
    size = WORLD / 2 ** z
    return (mx + WORLD / 2 - x * size) / size * EXTENT, (WORLD / 2 - my - y * size) / size * EXTENT


def inside(px: float, py: float) -> bool:
    return 0 <= px < EXTENT and 0 <= py < EXTENT


def decode(response) -> dict:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    data = response.data
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def features(tile: dict, layer: str) -> list[dict]:
    return tile.get(layer, {}).get("features", [])


def published_sites(engine, where: str = "true", binds: dict | None = None) -> dict[int, dict]:
    """Published sites with at least one published solution matching `where` (on solution s)."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT site.id, site.name, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat,
                   array_agg(DISTINCT s.type) AS types, bool_or(coalesce(s.vacant_places, 0) > 0) AS vacancy,
                   count(*) AS solutions
            FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.status = 'published' AND s.status = 'published' AND {where}
            GROUP BY site.id"""), binds or {}).mappings()
        return {r["id"]: dict(r) for r in rows}


def sites_in_tile(sites: dict[int, dict], z: int, x: int, y: int) -> dict[int, dict]:
    return {i: s for i, s in sites.items() if inside(*position_in_tile(s["lon"], s["lat"], z, x, y))}


def get_tile(client, z, x, y, query="", tileset="solutions", **headers):
    return client.get(f"/tiles/{tileset}/{z}/{x}/{y}.mvt{query}", headers=headers)


# -- what the tiles hold ------------------------------------------------------------------------------------

@pytest.mark.parametrize("place, z", [("Lyon", 14), ("Lyon", 12), ("Paris 11e", 16)])
def test_every_site_of_a_city_tile_is_drawn_where_it_is(client, engine, place, z):
    lon, lat = LYON if place == "Lyon" else PARIS_11
    _, x, y = tile_of(lon, lat, z)
    tile = decode(get_tile(client, z, x, y))
    assert "clusters" not in tile  # a city view shows every site
    sites = published_sites(engine)
    expected = sites_in_tile(sites, z, x, y)
    drawn = {}
    for feature in features(tile, "sites"):
        px, py = feature["geometry"]["coordinates"]
        site = sites[feature["id"]]
        ex, ey = position_in_tile(site["lon"], site["lat"], z, x, y)
        assert abs(px - ex) <= 1 and abs(py - ey) <= 1, feature
        assert feature["properties"]["name"] == site["name"]
        if inside(px, py):
            drawn[feature["id"]] = feature
    assert expected and set(drawn) == set(expected)
    for feature in drawn.values():
        props = feature["properties"]
        assert set(props["types"].split(",")) == set(expected[feature["id"]]["types"])
        assert props["type"] in props["types"].split(",")
        assert props["vacancy"] == expected[feature["id"]]["vacancy"]
        assert props["solutions"] >= 1 and props["precision"] in ("address", "commune")


def check_clusters(tile: dict, expected: dict[int, dict]) -> None:
    """Clusters and lone sites of a tile account for exactly the expected sites, in total and per type."""
    clusters, lone = features(tile, "clusters"), features(tile, "sites")
    for feature in clusters + lone:
        assert inside(*feature["geometry"]["coordinates"]), feature
    assert all(c["properties"]["count"] >= 2 for c in clusters)
    assert sum(c["properties"]["count"] for c in clusters) + len(lone) == len(expected)
    assert {f["id"] for f in lone} <= set(expected)
    per_type = Counter(t for site in expected.values() for t in site["types"])
    drawn_per_type = Counter()
    for c in clusters:
        drawn_per_type.update({t: c["properties"].get(t, 0) for t in SOLUTION_TYPES})
    for f in lone:
        drawn_per_type.update(f["properties"]["types"].split(","))
    assert +drawn_per_type == per_type
    vacant = sum(1 for s in expected.values() if s["vacancy"])
    assert sum(c["properties"]["vacant_sites"] for c in clusters) + sum(f["properties"]["vacancy"] for f in lone) \
        == vacant
    assert sum(c["properties"]["solutions"] for c in clusters) + sum(f["properties"]["solutions"] for f in lone) \
        == sum(s["solutions"] for s in expected.values())


@pytest.mark.parametrize("z", [0, 3, 6, 9, 11])
def test_clusters_count_exactly_the_published_sites_inside_the_tile(client, engine, z):
    sites = published_sites(engine)
    for lon, lat in (LYON, PARIS_11):
        _, x, y = tile_of(lon, lat, z)
        tile = decode(get_tile(client, z, x, y))
        expected = sites_in_tile(sites, z, x, y)
        assert expected
        check_clusters(tile, expected)


def test_a_city_tile_gathers_only_the_sites_of_its_dense_cells(fresh_client, fresh_engine):
    """At z12–13 a cell holding more than DENSE_CELL_SITES sites (here 30 missions within 10 m of Lyon's
    town hall) is a cluster, and every other site of the tile is drawn; from z14 every site is drawn."""
    with fresh_engine.begin() as conn:
        conn.execute(text("""
            WITH new_sites AS (
                INSERT INTO site (name, kind, commune_code, geom, position_precision, status, source)
                SELECT 'Exemple — antenne ' || n, 'mission_locale', code,
                       ST_Translate(town_hall, 0.0001 * cos(n), 0.0001 * sin(n)), 'address', 'published', 'manual'
                FROM commune, generate_series(1, 30) AS n WHERE code = '69381' RETURNING id)
            INSERT INTO solution (site_id, type, title, status, source, position)
            SELECT id, 'mission_locale', 'Accompagnement', 'published', 'manual', 'POINT(0 0)' FROM new_sites"""))
        town_hall = conn.execute(text("SELECT ST_X(town_hall), ST_Y(town_hall) FROM commune WHERE code = '69381'")).one()
    sites = published_sites(fresh_engine)
    for z in (12, 13):
        _, x, y = tile_of(*town_hall, z)
        tile = decode(get_tile(fresh_client, z, x, y))
        check_clusters(tile, sites_in_tile(sites, z, x, y))
        assert all(c["properties"]["count"] > tiles.DENSE_CELL_SITES for c in features(tile, "clusters"))
        assert max(c["properties"]["count"] for c in features(tile, "clusters")) >= 30
        assert features(tile, "sites")  # the sparser cells show their sites
    _, x, y = tile_of(*town_hall, 14)
    tile = decode(get_tile(fresh_client, 14, x, y))
    assert "clusters" not in tile
    drawn = {f["id"] for f in features(tile, "sites") if inside(*f["geometry"]["coordinates"])}
    assert drawn == set(sites_in_tile(sites, 14, x, y))


def test_a_national_view_is_a_few_kilobytes(client):
    for x, y in ((15, 10), (16, 11), (15, 11)):  # z5 tiles covering mainland France
        response = get_tile(client, 5, x, y, **{"Accept-Encoding": "gzip"})
        assert response.status_code == 200 and len(response.data) < 8000


@pytest.mark.parametrize("query, where", [
    ("?type=apprentissage", "s.type = 'apprentissage'"),
    ("?type=apprentissage&has_vacancy=true", "s.type = 'apprentissage' AND s.vacant_places > 0"),
    ("?type=service_civique&formula=combinee", "s.service_civique_formula = 'combinee'"),
    ("?voie=professionnelle", "s.voie = 'professionnelle'"),
    ("?type=places_lycee,apprentissage&voie=generale,technologique&has_vacancy=true",
     "s.type IN ('places_lycee', 'apprentissage') AND s.voie IN ('generale', 'technologique') "
     "AND s.vacant_places > 0"),
    ("?type=service_civique,mission_locale&formula=plein_temps",
     "s.type IN ('service_civique', 'mission_locale') AND s.service_civique_formula = 'plein_temps'"),
    ("?has_vacancy=true", "s.vacant_places > 0"),
    ("?type=epide&formula=combinee", "false"),
])
def test_the_search_filters_apply_to_tiles(client, engine, query, where):
    sites = published_sites(engine, where)
    for z in (5, 9, 14):
        _, x, y = tile_of(*LYON, z)
        expected = sites_in_tile(sites, z, x, y)
        response = get_tile(client, z, x, y, query)
        if not expected:
            assert response.status_code == 204
            continue
        tile = decode(response)
        if z > CLUSTER_MAX_ZOOM:
            ids = {f["id"] for f in features(tile, "sites") if inside(*f["geometry"]["coordinates"])}
            assert ids == set(expected)
        else:
            check_clusters(tile, expected)


def random_page_filters(rng: random.Random) -> SolutionFilters:
    """What a young person can tick on the map page: types, then voies or formulas under their type, vacancy."""
    types = tuple(rng.sample(list(SOLUTION_TYPES), rng.choice([0, 1, 1, 2, 3])))
    voies = tuple(rng.sample(list(VOIES), rng.randint(1, 2))) if rng.random() < 0.3 else ()
    formulas = (rng.choice(list(SERVICE_CIVIQUE_FORMULAS)),) if rng.random() < 0.2 else ()
    return SolutionFilters(types=types, voies=voies, formulas=formulas, has_vacancy=rng.random() < 0.4)


def test_a_filtered_map_read_from_the_pyramid_is_the_map_computed_from_the_rows(engine):
    """Every filter combination of the page, at every zoom with clusters (city zooms included, where only dense
    cells gather their sites): the tile the pyramid gives is byte for byte the tile computed from the rows of
    its sites."""
    rng = random.Random(14)
    places = [LYON, PARIS_11, (-1.6778, 48.1173), (5.3698, 43.2965), (55.45, -20.88)]  # + Rennes, Marseille, Réunion
    compared = 0
    with engine.connect() as conn:
        for _ in range(60):
            filters, z = random_page_filters(rng), rng.randint(0, tiles.CITY_CLUSTERS_MAX_ZOOM)
            _, x, y = tile_of(*rng.choice(places), z)
            binds = {"z": z, "x": x, "y": y, "today": dt.date.today(), "max_features": 10000}
            from_pyramid, pyramid_binds = tiles.solutions_tile_sql(filters, z, CLUSTER_MAX_ZOOM)
            from_rows, rows_binds = tiles.clustered_tile_from_rows_sql(filters, pyramid_binds["dense"])
            assert "_cell_live" in from_pyramid, filters  # read from a pyramid (unfiltered: site_cell)
            tile = conn.execute(text(from_pyramid), {**binds, **pyramid_binds}).scalar()
            assert tile == conn.execute(text(from_rows), {**binds, **rows_binds}).scalar(), (filters, z, x, y)
            compared += bool(tile)
    assert compared >= 30  # most of them show something


def test_drafts_and_archived_rows_never_appear(fresh_client, fresh_engine):
    z = 14
    _, x, y = tile_of(*LYON, z)
    site_id = next(iter(sites_in_tile(published_sites(fresh_engine), z, x, y)))
    low = tile_of(*LYON, 6)

    def ids():
        return {f["id"] for f in features(decode(get_tile(fresh_client, z, x, y)), "sites")}

    def low_count():
        tile = decode(get_tile(fresh_client, *low))
        return sum(c["properties"]["count"] for c in features(tile, "clusters")) + len(features(tile, "sites"))

    before = low_count()
    assert site_id in ids()
    for status in ("draft", "archived"):
        with fresh_engine.begin() as conn:
            conn.execute(text("UPDATE site SET status = :st WHERE id = :id"), {"st": status, "id": site_id})
        assert site_id not in ids()
        assert low_count() == before - 1
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE site SET status = 'published' WHERE id = :id"), {"id": site_id})
        conn.execute(text("UPDATE solution SET status = 'archived' WHERE site_id = :id"), {"id": site_id})
    assert site_id not in ids()
    assert low_count() == before - 1
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE site SET status = 'published' WHERE id = :id"), {"id": site_id})
        conn.execute(text("UPDATE solution SET status = 'published' WHERE site_id = :id"), {"id": site_id})
    assert site_id in ids() and low_count() == before


# -- HTTP ---------------------------------------------------------------------------------------------------

def test_an_empty_tile_is_204_without_a_body(client):
    response = get_tile(client, 6, 20, 20)  # Labrador
    assert response.status_code == 204 and response.data == b""
    assert "Cache-Control" in response.headers


def test_etag_and_304(client):
    _, x, y = tile_of(*LYON, 10)
    first = get_tile(client, 10, x, y)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    assert "no-cache" in first.headers["Cache-Control"]
    again = get_tile(client, 10, x, y, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    other = get_tile(client, 10, x, y, **{"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.data == first.data


def test_tiles_are_gzipped_when_the_client_accepts_it(client):
    _, x, y = tile_of(*LYON, 12)
    plain = get_tile(client, 12, x, y)
    zipped = get_tile(client, 12, x, y, **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # one validator per representation
    revalidated = get_tile(client, 12, x, y, **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert revalidated.status_code == 304


@pytest.mark.parametrize("url, parameter, status", [
    ("/tiles/solutions/a/0/0.mvt", "z", 400),
    ("/tiles/solutions/3/-1/0.mvt", "x", 400),
    ("/tiles/solutions/3/8/0.mvt", "x", 400),
    ("/tiles/solutions/3/0/8.mvt", "y", 400),
    ("/tiles/solutions/17/0/0.mvt", "z", 400),
    ("/tiles/basemap/13/0/0.mvt", "z", 400),
    ("/tiles/solutions/3/4/2.mvt?type=lycee", "type", 400),
    ("/tiles/solutions/3/4/2.mvt?has_vacancy=peut-etre", "has_vacancy", 400),
    ("/tiles/solutions.json?voie=nautique", "voie", 400),
    ("/tiles/solutions/3/4/2.mvt?typ=greta", "typ", 400),
    ("/tiles/basemap/3/4/2.mvt?type=greta", "type", 400),
    ("/tiles/roads/3/4/2.mvt", None, 404),
    ("/tiles/roads.json", None, 404),
])
def test_bad_tile_requests_get_a_clear_4xx(client, url, parameter, status):
    response = client.get(url)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    if parameter:
        assert body["parameter"] == parameter and f"'{parameter}'" in body["detail"]


# -- the cache follows the catalogue -----------------------------------------------------------------------

def test_an_edit_changes_exactly_the_tiles_it_should(fresh_client, fresh_engine):
    """Unpublishing a site changes every tile that holds it, at every zoom, and no other tile: those stay
    cached with the same ETag. Publishing it again brings back the very same tiles."""
    with fresh_engine.connect() as conn:
        site_id, lon, lat = conn.execute(text("""
            SELECT id, ST_X(geom), ST_Y(geom) FROM site
            WHERE is_example AND status = 'published' AND name LIKE '%Lyon%' ORDER BY id LIMIT 1""")).one()
    holding = [tile_of(lon, lat, z) for z in range(0, 17)]
    # Two tiles east and south: out of reach of the site even through a tile's buffer.
    others = [(z, x + dx, y + dy) for z, x, y in holding for dx, dy in ((2, 0), (0, 2), (-2, -2))
              if 0 <= x + dx < 2 ** z and 0 <= y + dy < 2 ** z]

    def etags(tiles):
        return {t: get_tile(fresh_client, *t).headers.get("ETag") for t in tiles}

    before_holding, before_others = etags(holding), etags(others)
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE site SET status = 'draft' WHERE id = :id"), {"id": site_id})
    for t in holding:
        response = get_tile(fresh_client, *t)
        assert response.headers["X-Tile-Cache"] == "miss", t
        assert response.headers.get("ETag") != before_holding[t], t
    for t in others:
        response = get_tile(fresh_client, *t)
        assert response.headers["X-Tile-Cache"] == "hit", t
        assert response.headers.get("ETag") == before_others[t], t
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE site SET status = 'published' WHERE id = :id"), {"id": site_id})
    assert etags(holding) == before_holding


def test_editing_a_solution_refreshes_its_sites_tiles(fresh_client, fresh_engine):
    with fresh_engine.connect() as conn:
        solution_id, vacant, lon, lat = conn.execute(text("""
            SELECT s.id, s.vacant_places, ST_X(site.geom), ST_Y(site.geom)
            FROM solution s JOIN site ON site.id = s.site_id
            WHERE s.is_example AND s.capacity > 0 AND s.vacant_places = 0 ORDER BY s.id LIMIT 1""")).one()
    z, x, y = tile_of(lon, lat, 15)
    before = get_tile(fresh_client, z, x, y, "?has_vacancy=true")
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE solution SET vacant_places = 1 WHERE id = :id"), {"id": solution_id})
    after = get_tile(fresh_client, z, x, y, "?has_vacancy=true")
    assert after.headers["X-Tile-Cache"] == "miss"
    assert after.status_code == 200 and after.headers.get("ETag") != before.headers.get("ETag")


def test_a_bulk_change_empties_the_catalogue_cache_but_not_the_basemap(fresh_client, fresh_engine):
    catalogue, basemap = tile_of(*PARIS_11, 8), tile_of(*PARIS_11, 8)
    get_tile(fresh_client, *catalogue)
    get_tile(fresh_client, *basemap, tileset="basemap")
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE solution SET updated_at = updated_at"))  # every row: too many to list
    assert get_tile(fresh_client, *catalogue).headers["X-Tile-Cache"] == "miss"
    assert get_tile(fresh_client, *basemap, tileset="basemap").headers["X-Tile-Cache"] == "hit"


def counting_statements(engine):
    """A list that every statement run on `engine` from now on appends itself to."""
    run = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: run.append(statement))
    return run


def edit(engine, sql: str, binds: dict, elsewhere: bool = True, announce: bool = True) -> None:
    """Commit `sql`, by default as another process would: on a bare DBAPI connection, unseen by this process's
    engines; with `announce=False`, without the catalogue's announcement."""
    silenced = ["ALTER TABLE catalogue_change DISABLE TRIGGER catalogue_change_announce", sql,
                "ALTER TABLE catalogue_change ENABLE TRIGGER catalogue_change_announce"]
    statements = [sql] if announce else silenced
    if not elsewhere:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement, binds if statement is sql else ())
        return
    conn = engine.raw_connection()
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, binds if statement is sql else None)
        conn.commit()
    finally:
        conn.close()


def example_site_tile(engine, z: int = 15) -> tuple[int, tuple[int, int, int]]:
    with engine.connect() as conn:
        site_id, lon, lat = conn.execute(text("""
            SELECT id, ST_X(geom), ST_Y(geom) FROM site
            WHERE is_example AND status = 'published' AND name LIKE '%Lyon%' ORDER BY id LIMIT 1""")).one()
    return site_id, tile_of(lon, lat, z)


def test_a_cached_tile_asks_the_database_nothing_until_a_change_is_announced(fresh_database_url, fresh_engine):
    app = make_test_app(fresh_database_url, tiles={"cache_recheck_s": 3600})
    try:
        client = app.test_client()
        site_id, tile = example_site_tile(fresh_engine)
        before = get_tile(client, *tile)
        get_tile(client, *tile)  # caught up with the cache's own commit (it folded the pyramid's deltas)
        statements = counting_statements(app.extensions["mapservice.databases"].reads)
        for _ in range(20):
            assert get_tile(client, *tile).headers["X-Tile-Cache"] == "hit"
        assert statements == []

        # Another process unpublishes the site: its commit is announced, and the tile is rendered again.
        edit(fresh_engine, "UPDATE site SET status = 'draft' WHERE id = %(id)s", {"id": site_id})
        deadline = time.monotonic() + 5
        while (after := get_tile(client, *tile)).headers["X-Tile-Cache"] == "hit" and time.monotonic() < deadline:
            time.sleep(0.001)
        assert after.headers["X-Tile-Cache"] == "miss"
        assert after.headers.get("ETag") != before.headers.get("ETag")
    finally:
        dispose_app(app)


def test_a_change_whose_announcement_never_came_shows_after_the_recheck_interval(fresh_database_url,
                                                                                fresh_engine):
    app = make_test_app(fresh_database_url, tiles={"cache_recheck_s": 0.5})
    try:
        client = app.test_client()
        site_id, tile = example_site_tile(fresh_engine)
        before = get_tile(client, *tile).headers.get("ETag")
        get_tile(client, *tile)  # caught up with the cache's own commit (it folded the pyramid's deltas)
        edit(fresh_engine, "UPDATE site SET status = 'draft' WHERE id = %(id)s", {"id": site_id}, announce=False)
        time.sleep(0.1)
        stale = get_tile(client, *tile)
        assert stale.headers["X-Tile-Cache"] == "hit" and stale.headers.get("ETag") == before
        time.sleep(0.5)
        fresh = get_tile(client, *tile)
        assert fresh.headers["X-Tile-Cache"] == "miss" and fresh.headers.get("ETag") != before
    finally:
        dispose_app(app)


def test_the_process_that_commits_a_change_shows_it_on_its_next_request(fresh_database_url, fresh_engine):
    """Without waiting for the announcement to come back (here it never comes)."""
    app = make_test_app(fresh_database_url, tiles={"cache_recheck_s": 3600})
    try:
        client = app.test_client()
        site_id, tile = example_site_tile(fresh_engine)
        before = get_tile(client, *tile).headers.get("ETag")
        get_tile(client, *tile)
        edit(fresh_engine, "UPDATE site SET status = 'draft' WHERE id = %(id)s", {"id": site_id}, elsewhere=False,
             announce=False)
        after = get_tile(client, *tile)
        assert after.headers["X-Tile-Cache"] == "miss" and after.headers.get("ETag") != before
    finally:
        dispose_app(app)


# -- basemap ------------------------------------------------------------------------------------------------

def test_the_basemap_outlines_and_labels_the_territory(client):
    national = decode(get_tile(client, *tile_of(*LYON, 5), tileset="basemap"))
    assert {"regions", "academies", "departements", "labels"} <= set(national)
    assert "communes" not in national
    assert "69" in {f["properties"]["code"] for f in features(national, "departements")}
    assert "Lyon" in {f["properties"]["name"] for f in features(national, "academies")}

    z, x, y = tile_of(*LYON, 11)
    city = decode(get_tile(client, z, x, y, tileset="basemap"))
    communes = {f["properties"]["code"]: f for f in features(city, "communes")}
    assert "69123" in communes and communes["69123"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    labels = {f["properties"]["name"]: f for f in features(city, "labels") if f["properties"]["layer"] == "commune"}
    assert inside(*labels["Villeurbanne"]["geometry"]["coordinates"])


# -- TileJSON -----------------------------------------------------------------------------------------------

TILEJSON_SCHEMA = {  # the parts of TileJSON 3.0.0 that MapLibre and Leaflet.VectorGrid read
    "type": "object",
    "required": ["tilejson", "tiles", "vector_layers"],
    "properties": {
        "tilejson": {"const": "3.0.0"},
        "tiles": {"type": "array", "minItems": 1,
                  "items": {"type": "string", "pattern": r"^https?://.*\{z\}/\{x\}/\{y\}"}},
        "vector_layers": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "fields"],
            "properties": {"id": {"type": "string"}, "fields": {"type": "object",
                                                                "additionalProperties": {"type": "string"}},
                           "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
                           "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30}}}},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "center": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "scheme": {"enum": ["xyz", "tms"]},
        "name": {"type": "string"}, "description": {"type": "string"}, "attribution": {"type": "string"},
    },
}


@pytest.mark.parametrize("tileset, z", [("solutions", 13), ("solutions", 7), ("basemap", 10)])
def test_tilejson_is_valid_and_points_at_working_tiles(client, tileset, z):
    document = client.get(f"/tiles/{tileset}.json").get_json()
    jsonschema.validate(document, TILEJSON_SCHEMA)
    west, south, east, north = document["bounds"]
    assert west < LYON[0] < east and south < LYON[1] < north
    declared = {layer["id"]: set(layer["fields"]) for layer in document["vector_layers"]}
    _, x, y = tile_of(*LYON, z)
    url = document["tiles"][0].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    tile = decode(client.get(url.replace("http://localhost", "")))
    assert tile and set(tile) <= set(declared)
    for layer, content in tile.items():
        for feature in content["features"]:
            assert set(feature["properties"]) <= declared[layer], layer


def test_a_filtered_tilejson_points_at_filtered_tiles(client):
    document = client.get("/tiles/solutions.json?type=apprentissage&has_vacancy=true").get_json()
    assert document["tiles"][0].endswith("{y}.mvt?type=apprentissage&has_vacancy=true")


def test_the_tiles_index_lists_tilesets_and_no_third_party_basemap_by_default(client):
    body = client.get("/tiles/").get_json()
    assert {t["name"] for t in body["tilesets"]} == {"solutions", "basemap"}
    assert body["raster_basemap"] is None


def test_the_cluster_pyramid_kept_by_the_triggers_equals_a_full_rebuild(engine):
    def pyramid(conn, live="_live"):
        return [conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5")).all()
                for table in (f"site_cell{live}", f"site_profile_cell{live}", f"site_class_cell{live}",
                              "site_summary")]

    with engine.connect() as conn:  # rolled back when the block ends
        site_id, other_id = conn.execute(text(
            "SELECT id FROM site WHERE is_example ORDER BY id LIMIT 2")).scalars().all()
        conn.execute(text("UPDATE site SET geom = ST_SetSRID(ST_MakePoint(3.06, 50.63), 4326) WHERE id = :id"),
                     {"id": site_id})  # moved to Lille
        conn.execute(text("UPDATE solution SET status = 'archived' WHERE site_id = :id"), {"id": other_id})
        conn.execute(text("UPDATE solution SET vacant_places = capacity WHERE is_example AND capacity > 0"))
        conn.execute(text("DELETE FROM site WHERE id = (SELECT max(id) FROM site WHERE is_example)"))
        kept = pyramid(conn)
        conn.execute(text("SELECT catalogue_fold()"))
        for delta in ("site_cell_delta", "site_profile_cell_delta", "site_class_cell_delta"):
            assert conn.scalar(text(f"SELECT count(*) FROM {delta}")) == 0
        assert pyramid(conn, live="") == kept  # the deltas added into the cells
        conn.execute(text("SELECT site_cells_rebuild()"))
        assert pyramid(conn) == kept
        assert conn.execute(text("SELECT sum(sites) FROM site_cell WHERE level = 3")).scalar() == conn.execute(text(
            "SELECT count(DISTINCT site.id) FROM site JOIN solution s ON s.site_id = site.id "
            "WHERE site.status = 'published' AND s.status = 'published'")).scalar()
