"""The change feed, played as the app uses it: keep a copy (a bundle), then follow /api/v1/changes from its cursor
and get exactly the catalogue as it is, under edits of every kind, concurrent writers and any page size."""
from __future__ import annotations

import gzip
import json
import random
import time

import pytest
from sqlalchemy import text

from mapservice.appdata import changelog
from mapservice.appdata.bundles import SITES, SOLUTIONS
from mapservice.values import FeedCursor

from .conftest import dispose_app, make_test_app


@pytest.fixture
def feed_app(fresh_database_url):
    app = make_test_app(fresh_database_url)
    yield app, app.test_client(), app.extensions["mapservice.engine"]
    dispose_app(app)


def catalogue(conn, area: str = "true") -> dict:
    """The public catalogue as the bundle writes it (its own SQL), keyed as the feed's entries are."""
    copy = {}
    for kind, sql in (("solution", SOLUTIONS), ("site", SITES)):
        for (feature,) in conn.execute(text(sql.format(area=area))):
            parsed = json.loads(feature)
            copy[(kind, parsed["id"])] = parsed
    return copy


def copy_with_cursor(engine) -> tuple[dict, str]:
    """A copy of the whole catalogue and its cursor, read in one snapshot (as a bundle is built)."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        cursor = changelog.token(FeedCursor(changelog.position(conn), 0, 0))
        return catalogue(conn), cursor


def barrier(engine) -> int:
    """A transaction id after every write made so far: the feed has given them all once its cursor passes it."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar()


def follow(client, copy: dict, cursor: str, limit: int, until: int | None = None, **area) -> tuple[dict, str, int]:
    """Apply every page after `cursor` to `copy`, as the app does, polling until the feed has passed `until`
    (a change waits for every older transaction of the server to end, whichever database it writes); the
    pages' cursors only ever move forward."""
    pages, deadline = 0, time.monotonic() + 20
    while True:
        response = client.get("/api/v1/changes", query_string={"since": cursor, "limit": limit, **area})
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        page = response.get_json()
        assert changelog.from_token(page["next"]) >= changelog.from_token(cursor)
        for entry in page["changes"]:
            key = (entry["type"], entry["id"])
            if entry["action"] == "upsert":
                copy[key] = entry["feature"]
            else:
                assert entry["reason"] in ("deleted", "archived", "unpublished", "outside_area")
                copy.pop(key, None)
        cursor, pages = page["next"], pages + 1
        if not page["more"]:
            if until is None or changelog.from_token(cursor).txid > until:
                return copy, cursor, pages
            assert time.monotonic() < deadline, "the feed did not pass the last write"
            time.sleep(0.05)


def entries(client, cursor: str, until: int, **area) -> list[dict]:
    """Every entry after `cursor`, once the feed has passed `until`."""
    found, deadline = [], time.monotonic() + 20
    while True:
        page = client.get("/api/v1/changes", query_string={"since": cursor, **area}).get_json()
        found += page["changes"]
        cursor = page["next"]
        if not page["more"] and changelog.from_token(cursor).txid > until:
            return found
        assert time.monotonic() < deadline, "the feed did not pass the last write"
        time.sleep(0.05)


def random_edits(conn, rng: random.Random, n: int) -> None:
    """Edits of every kind a curator, an import or an administrator makes."""
    solutions = conn.execute(text("SELECT id FROM solution ORDER BY id")).scalars().all()
    sites = conn.execute(text("SELECT id FROM site ORDER BY id")).scalars().all()
    for _ in range(n):
        kind = rng.choice(["title", "places", "unpublish", "archive", "publish", "delete", "move", "site_archive",
                           "new_solution", "bulk"])
        solution, site = rng.choice(solutions), rng.choice(sites)
        if kind == "title":
            conn.execute(text("UPDATE solution SET title = title || ' (modifié)' WHERE id = :i"), {"i": solution})
        elif kind == "places":
            conn.execute(text("UPDATE solution SET vacant_places = :n WHERE id = :i"),
                         {"i": solution, "n": rng.randint(0, 9)})
        elif kind in ("unpublish", "archive", "publish"):
            status = {"unpublish": "draft", "archive": "archived", "publish": "published"}[kind]
            conn.execute(text("UPDATE solution SET status = :s WHERE id = :i"), {"i": solution, "s": status})
        elif kind == "delete":
            conn.execute(text("DELETE FROM solution WHERE id = :i"), {"i": solution})
            solutions.remove(solution)
        elif kind == "move":  # to the town hall of another commune
            conn.execute(text("""
                UPDATE site SET commune_code = c.code, geom = c.town_hall FROM (
                    SELECT code, town_hall FROM commune WHERE kind = 'COM' ORDER BY code OFFSET :k LIMIT 1) c
                WHERE site.id = :i"""), {"i": site, "k": rng.randint(0, 30000)})
        elif kind == "site_archive":
            conn.execute(text("UPDATE site SET status = :s WHERE id = :i"),
                         {"i": site, "s": rng.choice(["archived", "draft", "published"])})
        elif kind == "new_solution":
            conn.execute(text("""
                INSERT INTO solution (site_id, type, title, status, source)
                VALUES (:i, 'mission_locale', 'Accueil ajouté', 'published', 'manual')"""), {"i": site})
        else:  # one statement over many rows, as an import applies
            conn.execute(text("UPDATE solution SET vacant_places = coalesce(vacant_places, 0) + 1 "
                              "WHERE id % 97 = :r"), {"r": rng.randint(0, 96)})


@pytest.mark.parametrize("seed, limit", [(1, 1000), (2, 7), (3, 1)])
def test_following_the_feed_from_a_copy_gives_exactly_the_current_catalogue(feed_app, seed, limit):
    app, client, engine = feed_app
    rng = random.Random(seed)
    copy, cursor = copy_with_cursor(engine)
    for _ in range(4):
        with engine.begin() as conn:
            random_edits(conn, rng, 6)
    followed, cursor, pages = follow(client, dict(copy), cursor, limit, until=barrier(engine))
    with engine.connect() as conn:
        assert followed == catalogue(conn)
    assert pages > 1 or limit == 1000
    # caught up: the next page is empty; its cursor moves on only as the server's transactions end
    again = client.get("/api/v1/changes", query_string={"since": cursor}).get_json()
    assert again["changes"] == [] and again["more"] is False
    assert changelog.from_token(again["next"]) >= changelog.from_token(cursor)


def test_a_writer_that_commits_after_a_later_one_is_not_missed(feed_app):
    app, client, engine = feed_app
    copy, cursor = copy_with_cursor(engine)
    slow = engine.connect()
    slow_tx = slow.begin()
    try:
        slow.execute(text("UPDATE solution SET title = 'Écrit en premier, validé en dernier' WHERE id = ("
                          "SELECT min(s.id) FROM solution s JOIN site ON site.id = s.site_id "
                          "WHERE s.status = 'published' AND site.status = 'published')"))
        with engine.begin() as conn:  # a later writer commits first
            conn.execute(text("UPDATE solution SET title = 'Écrit en second, validé en premier' WHERE id = ("
                              "SELECT max(s.id) FROM solution s JOIN site ON site.id = s.site_id "
                              "WHERE s.status = 'published' AND site.status = 'published')"))
        # While the older writer runs, the later one's changes wait: a cursor handed out now cannot pass them.
        held, cursor, _ = follow(client, dict(copy), cursor, 3)
        assert held == copy
        slow_tx.commit()
    finally:
        slow.close()
    followed, _, _ = follow(client, held, cursor, 3, until=barrier(engine))
    with engine.connect() as conn:
        current = catalogue(conn)
    assert followed == current
    titles = {f["properties"].get("title") for f in current.values()}
    assert {"Écrit en premier, validé en dernier", "Écrit en second, validé en premier"} <= titles


def test_the_app_keeps_rhone_with_its_bundle_and_the_feed_of_its_area(feed_app):
    """Download the Rhône bundle, then sites move in and out of the Rhône and solutions change on both sides:
    following the feed for the département only gives exactly the bundle a new download would."""
    app, client, engine = feed_app

    def bundle() -> dict:
        pointer = client.get("/api/v1/bundles/departement/69")
        return json.loads(gzip.decompress(client.get(pointer.headers["Location"]).data))

    def keyed(b: dict) -> dict:
        return {**{("solution", f["id"]): f for f in b["solutions"]["features"]},
                **{("site", f["id"]): f for f in b["sites"]["features"]}}

    old = bundle()
    with engine.begin() as conn:
        rhone_site = conn.execute(text("""
            SELECT site.id FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.commune_code LIKE '69%' AND site.status = 'published' AND s.status = 'published'
            ORDER BY site.id LIMIT 1""")).scalar()
        ain_site = conn.execute(text("""
            SELECT site.id FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.commune_code LIKE '01%' AND site.status = 'published' AND s.status = 'published'
            ORDER BY site.id LIMIT 1""")).scalar()
        # a Rhône site moves to Bourg-en-Bresse (01053), an Ain one to Villeurbanne (69266)
        for site, commune in ((rhone_site, "01053"), (ain_site, "69266")):
            conn.execute(text("UPDATE site SET commune_code = :c, geom = (SELECT town_hall FROM commune "
                              "WHERE code = :c) WHERE id = :i"), {"i": site, "c": commune})
        random_edits(conn, random.Random(5), 10)
    followed, _, _ = follow(client, keyed(old), old["cursor"], 5, until=barrier(engine), departement="69")
    assert followed == keyed(bundle())
    assert ("site", rhone_site) not in followed and ("site", ain_site) in followed


def test_a_site_s_edit_gives_its_solutions_and_a_solution_s_edit_gives_its_site_only(feed_app):
    """A site's fields are in its solutions' features (all of them come again); a solution's are in no other
    solution's, only in its site's list (the site comes again, its other solutions do not)."""
    app, client, engine = feed_app
    with engine.connect() as conn:
        site, *solutions = conn.execute(text("""
            SELECT site.id, s.id FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.id = (SELECT site_id FROM solution GROUP BY site_id HAVING count(*) >= 2 ORDER BY site_id
                             LIMIT 1)
            ORDER BY s.id""")).all()
    site_id = site[0]
    solution_ids = sorted([site[1]] + [row[1] for row in solutions])
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE solution SET title = title || ' (modifié)' WHERE id = :i"), {"i": solution_ids[0]})
    after_solution = entries(client, cursor, barrier(engine))
    assert [(e["type"], e["id"]) for e in after_solution] == [("site", site_id), ("solution", solution_ids[0])]
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE site SET name = name || ' (modifié)' WHERE id = :i"), {"i": site_id})
    after_site = entries(client, cursor, barrier(engine))
    assert [(e["type"], e["id"]) for e in after_site] == [("site", site_id)] + [
        ("solution", i) for i in solution_ids]


def test_a_renamed_commune_reaches_apps_following_the_feed(feed_app):
    """Its sites' and solutions' features carry its name: they come again, with the new one."""
    app, client, engine = feed_app
    copy, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        code = conn.execute(text("""
            SELECT site.commune_code FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.status = 'published' AND s.status = 'published' ORDER BY site.id LIMIT 1""")).scalar()
        conn.execute(text("UPDATE commune SET name = 'Nouvelle-Commune' WHERE code = :c"), {"c": code})
    copy, _, _ = follow(client, copy, cursor, 1000, until=barrier(engine))
    with engine.connect() as conn:
        assert copy == catalogue(conn)
    renamed = [key for key, feature in copy.items() if "Nouvelle-Commune" in json.dumps(feature)]
    assert {kind for kind, _ in renamed} == {"site", "solution"}


def test_an_app_keeping_a_box_gets_exactly_the_box_s_catalogue(feed_app):
    """Around Lyon (a box, not a département): sites move in and out of it while everything else changes too."""
    app, client, engine = feed_app
    box = {"bbox": "4.6,45.5,5.1,45.9"}
    inside = "site.geom && ST_MakeEnvelope(4.6, 45.5, 5.1, 45.9, 4326)"
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        cursor = changelog.token(FeedCursor(changelog.position(conn), 0, 0))
        copy = catalogue(conn, inside)
    with engine.begin() as conn:
        lyon_site = conn.execute(text(f"""
            SELECT site.id FROM site JOIN solution s ON s.site_id = site.id
            WHERE {inside} AND site.status = 'published' AND s.status = 'published'
            ORDER BY site.id LIMIT 1""")).scalar()
        conn.execute(text("UPDATE site SET commune_code = '01053', geom = (SELECT town_hall FROM commune "
                          "WHERE code = '01053') WHERE id = :i"), {"i": lyon_site})
        random_edits(conn, random.Random(8), 10)
    followed, _, _ = follow(client, copy, cursor, 4, until=barrier(engine), **box)
    with engine.connect() as conn:
        assert followed == catalogue(conn, inside)
    assert ("site", lyon_site) not in followed


def test_a_gzipped_page_is_the_same_page(feed_app):
    app, client, engine = feed_app
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        random_edits(conn, random.Random(9), 5)
    entries(client, cursor, barrier(engine))  # the edits are in the feed
    plain = client.get("/api/v1/changes", query_string={"since": cursor})
    gzipped = client.get("/api/v1/changes", query_string={"since": cursor}, headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in gzipped.headers["Vary"]
    assert json.loads(gzip.decompress(gzipped.data)) == plain.get_json() and plain.get_json()["changes"]


def test_a_page_is_the_same_without_prepared_statements(feed_app, fresh_database_url):
    """Behind PgBouncer in transaction pooling (prepared_statements off) the page's statement is sent as text."""
    app, client, engine = feed_app
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        random_edits(conn, random.Random(10), 5)
    entries(client, cursor, barrier(engine))  # the edits are in the feed
    plain = make_test_app(fresh_database_url, database={"url": fresh_database_url, "prepared_statements": False})
    try:
        for area in ({}, {"departement": "69"}, {"bbox": "4.6,45.5,5.1,45.9"}):
            asked = {"since": cursor, "limit": 7, **area}
            page = plain.test_client().get("/api/v1/changes", query_string=asked)
            assert page.status_code == 200 and (page.get_json()["changes"] or area)
            assert page.get_json() == client.get("/api/v1/changes", query_string=asked).get_json()
    finally:
        dispose_app(plain)


def test_an_area_s_feed_says_when_a_site_left_it(feed_app):
    app, client, engine = feed_app
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        site = conn.execute(text("SELECT id FROM site WHERE commune_code = '69266' AND status = 'published' "
                                 "ORDER BY id LIMIT 1")).scalar()
        conn.execute(text("UPDATE site SET commune_code = '01053', geom = (SELECT town_hall FROM commune "
                          "WHERE code = '01053') WHERE id = :i"), {"i": site})
    until = barrier(engine)
    assert {"type": "site", "id": site, "action": "remove", "reason": "outside_area"} in entries(
        client, cursor, until, departement="69")
    assert entries(client, cursor, until, departement="35") == []  # nothing there concerned Ille-et-Vilaine


def test_a_cursor_older_than_the_kept_history_is_gone(feed_app):
    app, client, engine = feed_app
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        random_edits(conn, random.Random(6), 3)
    with engine.begin() as conn:
        conn.execute(text("UPDATE catalogue_change SET changed_at = now() - interval '8 days'"))
        conn.execute(text("SELECT catalogue_fold()"))
    response = client.get("/api/v1/changes", query_string={"since": cursor})
    assert response.status_code == 410
    assert response.mimetype == "application/problem+json"
    assert "/api/v1/bundles" in response.get_json()["detail"] and response.get_json()["parameter"] == "since"


@pytest.mark.parametrize("query, parameter", [
    ({}, "since"),
    ({"since": "pas-un-curseur"}, "since"),
    ({"since": changelog.token(FeedCursor(1, 0, 0))[:-2] + "%%"}, "since"),
    ({"since": changelog.token(FeedCursor(1, 0, 0)), "limit": "0"}, "limit"),
    ({"since": changelog.token(FeedCursor(1, 0, 0)), "departement": "69", "region": "84"}, "region"),
    ({"since": changelog.token(FeedCursor(1, 0, 0)), "departement": "6"}, "departement"),
    ({"since": changelog.token(FeedCursor(1, 0, 0)), "bbox": "1,2,3"}, "bbox"),
])
def test_bad_feed_requests_are_a_400_naming_the_parameter(client, query, parameter):
    response = client.get("/api/v1/changes", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == parameter


def test_feed_pages_and_refusals_match_the_openapi_document(feed_app):
    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

    app, client, engine = feed_app
    openapi = OpenAPI.from_dict(client.get("/api/v1/openapi.json").get_json(), config=Config(
        extra_media_type_deserializers={"application/problem+json": json.loads}))
    _, cursor = copy_with_cursor(engine)
    with engine.begin() as conn:
        random_edits(conn, random.Random(7), 8)
    entries(client, cursor, barrier(engine))  # the edits are in the feed
    page = client.get("/api/v1/changes", query_string={"since": cursor, "limit": 50})
    actions = {entry["action"] for entry in page.get_json()["changes"]}
    assert actions == {"upsert", "remove"}
    for response in (page, client.get("/api/v1/changes", query_string={"since": "x"})):
        openapi.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))
    following = page.get_json()["links"][0]["href"]
    assert "since=" in following and "limit=50" in following
