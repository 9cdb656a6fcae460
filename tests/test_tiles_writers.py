"""Writers side by side: a long import does not hold up a curator's save, and the tiles (cache included) show
every committed change, whatever order the commits land in."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from mapservice.db import make_engine

from .conftest import dispose_app, make_test_app, throwaway_database
from .test_tiles import LYON, PARIS_11, check_clusters, decode, get_tile, published_sites, sites_in_tile, tile_of


@pytest.fixture(scope="module")
def database_url(server, template):
    """A database of this module's own, which its tests change and commit to."""
    with throwaway_database(server, "mapservice_writers", template=template) as url:
        yield url


@pytest.fixture(scope="module")
def app(database_url):
    app = make_test_app(database_url)
    yield app
    dispose_app(app)


@pytest.fixture(scope="module")
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def example_solution(engine, near: tuple[float, float]) -> dict:
    """A published example solution with room for a vacant place, at a site near `near` (lon, lat)."""
    with engine.connect() as conn:
        return dict(conn.execute(text("""
            SELECT s.id, s.site_id, s.vacant_places, s.capacity, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat
            FROM solution s JOIN site ON site.id = s.site_id
            WHERE s.status = 'published' AND site.status = 'published' AND s.capacity > 0
            ORDER BY site.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), s.id LIMIT 1"""),
            {"lon": near[0], "lat": near[1]}).mappings().one())


def save_vacant_places(conn, solution_id: int, places: int) -> None:
    """A curator's save, as the workspace will do it: one UPDATE, then commit. It must never wait for a lock
    held by another writer's transaction: lock_timeout turns a wait into an error."""
    conn.execute(text("SET LOCAL lock_timeout = '3s'"))
    conn.execute(text("UPDATE solution SET vacant_places = :v WHERE id = :id"), {"v": places, "id": solution_id})
    conn.commit()


def assert_tiles_match_rows(client, engine, lon: float, lat: float) -> None:
    """The tiles holding (lon, lat) from the national view to the city, unfiltered and filtered on vacancy,
    account for exactly the committed rows."""
    for query, where in (("", "true"), ("?has_vacancy=true", "s.vacant_places > 0")):
        sites = published_sites(engine, where)
        for z in (0, 4, 8, 11):
            _, x, y = tile_of(lon, lat, z)
            response = get_tile(client, z, x, y, query)
            expected = sites_in_tile(sites, z, x, y)
            if not expected:
                assert response.status_code == 204
                continue
            check_clusters(decode(response), expected)


def assert_pyramid_is_exact(engine) -> None:
    """The pyramid and summaries the triggers keep equal those rebuilt from the rows."""
    def pyramid(conn):
        return [conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5")).all()
                for table in ("site_cell_live", "site_profile_cell_live", "site_class_cell_live", "site_summary")]

    with engine.connect() as conn:  # the rebuild is rolled back
        kept = pyramid(conn)
        conn.execute(text("SELECT site_cells_rebuild()"))
        assert pyramid(conn) == kept


def test_a_save_during_a_long_import_returns_at_once_and_shows_on_the_map_after_commit(client, engine):
    solution = example_solution(engine, LYON)
    places = 1 if not solution["vacant_places"] else 0
    assert_tiles_match_rows(client, engine, solution["lon"], solution["lat"])  # cached, before
    with engine.connect() as importer, engine.connect() as curator:
        # An import running in one transaction: thousands of solutions and hundreds of sites in and around
        # Paris, so that it has touched every level of the pyramid above Lyon too.
        changed = importer.execute(text("""
            UPDATE solution SET vacant_places = CASE WHEN vacant_places IS NULL THEN capacity END,
                                updated_at = now()
            WHERE site_id IN (SELECT id FROM site WHERE commune_code LIKE ANY (ARRAY['75%', '92%', '93%', '94%']))
        """)).rowcount
        importer.execute(text("UPDATE site SET updated_at = now() WHERE commune_code LIKE '75%'"))
        assert changed > 100

        save_vacant_places(curator, solution["id"], places)
        assert_tiles_match_rows(client, engine, solution["lon"], solution["lat"])

        importer.commit()
    assert_tiles_match_rows(client, engine, *PARIS_11)
    assert_tiles_match_rows(client, engine, solution["lon"], solution["lat"])
    assert_pyramid_is_exact(engine)


def test_no_change_is_missed_when_commits_land_out_of_order(client, engine):
    """The change logged first but committed last still reaches the cache: its tiles are rendered again."""
    first, second = example_solution(engine, PARIS_11), example_solution(engine, LYON)
    first_tile = tile_of(first["lon"], first["lat"], 15)
    second_tile = tile_of(second["lon"], second["lat"], 15)
    for tile in (first_tile, second_tile):
        get_tile(client, *tile, "?has_vacancy=true")
        assert get_tile(client, *tile, "?has_vacancy=true").headers["X-Tile-Cache"] == "hit"

    with engine.connect() as early, engine.connect() as late:
        early.execute(text("UPDATE solution SET vacant_places = :v WHERE id = :id"),
                      {"v": 0 if first["vacant_places"] else 1, "id": first["id"]})
        save_vacant_places(late, second["id"], 0 if second["vacant_places"] else 1)
        # The cache catches up with the later change while the earlier one is still uncommitted.
        assert get_tile(client, *second_tile, "?has_vacancy=true").headers["X-Tile-Cache"] == "miss"
        assert get_tile(client, *first_tile, "?has_vacancy=true").headers["X-Tile-Cache"] == "hit"
        early.commit()
    with engine.connect() as conn:
        logged = dict(conn.execute(text("""
            SELECT solution_ids[1], id FROM catalogue_change WHERE solution_ids IN (ARRAY[:a]::bigint[], ARRAY[:b]::bigint[])"""),
            {"a": first["id"], "b": second["id"]}).all())
    assert logged[first["id"]] < logged[second["id"]]  # logged first, committed last

    response = get_tile(client, *first_tile, "?has_vacancy=true")
    assert response.headers["X-Tile-Cache"] == "miss"
    drawn = {f["id"] for f in decode(response).get("sites", {}).get("features", [])} \
        if response.status_code == 200 else set()
    assert (first["site_id"] in drawn) == bool(published_sites(
        engine, "s.vacant_places > 0 AND site.id = :id", {"id": first["site_id"]}))


def test_writers_of_one_site_take_turns_and_the_pyramid_stays_exact(engine):
    """Two transactions changing two solutions of one site: the second waits for the first, then both
    count (the site's summary is recomputed with the other's change)."""
    with engine.connect() as conn:
        site_id, a, b = conn.execute(text("""
            SELECT site_id, min(id), max(id) FROM solution WHERE status = 'published'
            GROUP BY site_id HAVING count(*) >= 2 ORDER BY site_id LIMIT 1""")).one()
    finished = threading.Event()

    def archive_b():
        with engine.connect() as conn:
            conn.execute(text("UPDATE solution SET status = 'archived' WHERE id = :id"), {"id": b})
            conn.commit()
        finished.set()

    with engine.connect() as first:
        first.execute(text("UPDATE solution SET status = 'archived' WHERE id = :id"), {"id": a})
        second = threading.Thread(target=archive_b)
        second.start()
        assert not finished.wait(0.5)  # waiting for the site's lock
        first.commit()
    second.join(timeout=10)
    assert finished.is_set()
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM site_summary WHERE id = :id"), {"id": site_id}) == (
            conn.scalar(text("SELECT count(*) FROM solution WHERE site_id = :id AND status = 'published'"),
                        {"id": site_id}) > 0)
    assert_pyramid_is_exact(engine)


def test_a_cache_further_behind_than_the_log_starts_afresh(client, engine):
    solution = example_solution(engine, LYON)
    tile = tile_of(solution["lon"], solution["lat"], 15)
    far = tile_of(*PARIS_11, 15)
    for t in (tile, far):
        get_tile(client, *t, "?has_vacancy=true")
    with engine.connect() as conn:
        save_vacant_places(conn, solution["id"], 0 if solution["vacant_places"] else 1)
        conn.execute(text("SELECT catalogue_fold('0 seconds')"))  # the change leaves the log at once
        conn.commit()
        assert conn.scalar(text("SELECT count(*) FROM catalogue_change")) == 0
    assert get_tile(client, *tile, "?has_vacancy=true").headers["X-Tile-Cache"] == "miss"
    assert get_tile(client, *far, "?has_vacancy=true").headers["X-Tile-Cache"] == "miss"
