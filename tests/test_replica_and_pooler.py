"""Reads on a real streaming standby (pg_basebackup + standby.signal of a throwaway private cluster), writes and
a writer's next reads on the primary, the tile cache following the server it renders from, lag, the
standby going away; and the service through PgBouncer in transaction pooling."""
from __future__ import annotations

import concurrent.futures
import time

import pytest
from sqlalchemy import text

from mapservice import db
from mapservice.db import make_engine, upgrade

from .conftest import dispose_app, make_test_app, serving
from .servers import pgbouncer, streaming_standby, throwaway_cluster
from .workspace_fixtures import make_account, sign_in

WHICH = "/_which-server"


@pytest.fixture(scope="module")
def primary_and_standby(tmp_path_factory):
    base = tmp_path_factory.mktemp("replication")
    with throwaway_cluster(base / "primary") as primary:
        engine = make_engine(primary.url())
        upgrade(engine)
        engine.dispose()
        with streaming_standby(primary, base / "standby") as standby:
            yield primary, standby


def replicated_app(primary, standby, **overrides):
    app = make_test_app(primary.url(), database={"url": primary.url(), "replica_url": standby.url(),
                                                 "read_primary_after_write_s": 30, "replica_retry_s": 1},
                        **overrides)

    def which_server():
        from mapservice.web.connection import read_db

        conn = read_db()
        return {"standby": conn.scalar(text("SELECT pg_is_in_recovery()")),
                "version": conn.scalar(text("SELECT coalesce(max(id), 0) FROM catalogue_change"))}

    app.add_url_rule(WHICH, "which_server", which_server)
    return app


def wait_for_replay(primary, standby, timeout: float = 10) -> None:
    primary_engine, standby_engine = make_engine(primary.url()), make_engine(standby.url())
    try:
        with primary_engine.connect() as conn:
            target = conn.scalar(text("SELECT pg_current_wal_lsn()"))
        deadline = time.monotonic() + timeout
        with standby_engine.connect() as conn:
            while conn.scalar(text("SELECT pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn)"), {"t": target}) is not True:
                assert time.monotonic() < deadline, "the standby did not catch up"
                time.sleep(0.05)
    finally:
        primary_engine.dispose()
        standby_engine.dispose()


def on_server(cluster, sql: str):
    engine = make_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_public_reads_go_to_the_standby_and_a_writers_next_reads_to_the_primary(primary_and_standby):
    primary, standby = primary_and_standby
    app = replicated_app(primary, standby)
    try:
        visitor, curator = app.test_client(), app.test_client()
        assert visitor.get(WHICH).get_json()["standby"] is True
        assert visitor.get("/api/v1/solutions/nearest?lat=45.76&lon=4.83").status_code == 200
        # a refused write (no such solution: rolled back) does not pin the browser to the primary
        assert curator.post("/api/v1/solutions/1/error-reports", json={"reason": "adresse"}).status_code == 404
        assert curator.get(WHICH).get_json()["standby"] is True
        with app.test_request_context():
            from mapservice.web.connection import end_unit_of_work, read_db, write_db

            assert read_db().scalar(text("SELECT pg_is_in_recovery()")) is True
            conn = write_db()  # the request's writes and its later reads: the primary
            assert conn.scalar(text("SELECT pg_is_in_recovery()")) is False
            assert read_db() is conn
            from flask import Response

            answer = end_unit_of_work(Response(status=200))
            cookie = answer.headers["Set-Cookie"]
            until = int(cookie.partition("mapservice_primary_until=")[2].partition(";")[0])
            assert until > time.time() + 20 and "HttpOnly" in cookie
    finally:
        dispose_app(app)


def test_after_a_write_the_same_browser_reads_the_primary_while_the_standby_lags(primary_and_standby):
    primary, standby = primary_and_standby
    app = replicated_app(primary, standby)
    on_server(standby, "SELECT pg_wal_replay_pause()")
    try:
        before = on_server(primary, "SELECT coalesce(max(id), 0) FROM catalogue_change")
        # A write the catalogue's change log records (the primary of this test holds no catalogue rows).
        on_server(primary, "TRUNCATE solution CASCADE")
        after = on_server(primary, "SELECT coalesce(max(id), 0) FROM catalogue_change")
        assert after > before
        visitor, curator = app.test_client(), app.test_client()
        # what a committed write leaves in the browser
        curator.set_cookie("mapservice_primary_until", str(int(time.time()) + 30))
        assert visitor.get(WHICH).get_json() == {"standby": True, "version": before}  # lagging
        assert curator.get(WHICH).get_json() == {"standby": False, "version": after}
        # The tile cache reads the catalogue's changes from the server it renders from: the lagging standby.
        visitor.get("/tiles/solutions/5/16/11.mvt")
        cache = app.extensions["mapservice.tile_cache"]
        lagging = cache.catalogue_version
        assert lagging == on_server(standby, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        assert lagging < on_server(primary, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        on_server(standby, "SELECT pg_wal_replay_resume()")
        wait_for_replay(primary, standby)
        assert visitor.get(WHICH).get_json() == {"standby": True, "version": after}
        visitor.get("/tiles/solutions/5/16/11.mvt")
        assert cache.catalogue_version > lagging
    finally:
        on_server(standby, "SELECT pg_wal_replay_resume()")
        dispose_app(app)


def test_tiles_rendered_from_the_standby_fold_the_pyramid_on_the_primary(primary_and_standby):
    """A standby cannot write: left to it, the writers' deltas would pile up on the primary, every tile adding
    up more of them."""
    primary, standby = primary_and_standby
    cell = "level = 16 AND cx = 33000 AND cy = 22000"
    # What a writer's triggers leave on the primary: one site with one solution in a level-16 cell.
    on_server(primary, "INSERT INTO site_cell_delta SELECT 16, 33000, 22000, 1, 1, 0, 0, 0, 7, 1"
                       + ", 0" * 10)
    wait_for_replay(primary, standby)
    app = replicated_app(primary, standby)
    try:
        visitor = app.test_client()
        assert visitor.get(WHICH).get_json()["standby"] is True
        assert visitor.get("/tiles/solutions/5/16/11.mvt").status_code in (200, 204)
        assert on_server(primary, f"SELECT count(*) FROM site_cell_delta WHERE {cell}") == 0
        assert on_server(primary, f"SELECT sites FROM site_cell WHERE {cell}") == 1
    finally:
        on_server(primary, f"DELETE FROM site_cell WHERE {cell}; DELETE FROM site_cell_delta WHERE {cell}")
        dispose_app(app)


def test_a_team_member_signs_in_while_public_reads_go_to_the_standby(primary_and_standby):
    """Signing in writes (the audit log, the failed attempts the throttling counts): on the primary."""
    primary, standby = primary_and_standby
    email = "referente.replica@exemple.invalid"
    engine = make_engine(primary.url())
    make_account(engine, email, "national_admin")
    wait_for_replay(primary, standby)
    app = replicated_app(primary, standby)
    try:
        client = app.test_client()
        assert client.get(WHICH).get_json()["standby"] is True
        assert sign_in(client, email, password="pas le bon").status_code == 401
        assert sign_in(client, email).status_code == 302
        assert client.get("/equipes/").status_code == 200
        assert on_server(primary, "SELECT array_agg(event ORDER BY id) FROM audit_event "
                                  f"WHERE email = '{email}' AND event LIKE 'login%'") == ["login_failed", "login"]
    finally:
        dispose_app(app)
        engine.dispose()


def test_when_the_standby_goes_away_reads_fall_back_to_the_primary(primary_and_standby):
    primary, standby = primary_and_standby
    app = replicated_app(primary, standby)
    try:
        client = app.test_client()
        client.get("/tiles/solutions/5/16/11.mvt")
        assert client.get(WHICH).get_json()["standby"] is True
        standby.stop()
        answers = [client.get(WHICH) for _ in range(3)]
        assert all(a.status_code == 200 and a.get_json()["standby"] is False for a in answers)
        assert client.get("/api/v1/solutions/nearest?lat=45.76&lon=4.83").status_code == 200
        assert client.get("/tiles/solutions/5/16/11.mvt").status_code in (200, 204)
        standby.start()
        time.sleep(1.1)  # replica_retry_s
        assert client.get(WHICH).get_json()["standby"] is True
    finally:
        if not standby.is_running():
            standby.start()
        dispose_app(app)


# -- PgBouncer in transaction pooling -------------------------------------------------------------------

PREPARED_SQL = "SELECT CAST(:x AS int) * 2 AS v"


def test_prepared_statements_must_be_off_behind_pgbouncer(database_url, tmp_path):
    with pgbouncer(tmp_path / "pgbouncer", database_url, pool_size=1) as url:
        # One server connection shared by two app connections: a statement prepared by the first exists on
        # the server the second one reaches.
        # Autocommit, as the app's reads: each statement is its own transaction, on any server connection.
        prepared = make_engine(url, prepared_statements=True, isolation_level="AUTOCOMMIT")
        plain = make_engine(url, prepared_statements=False, isolation_level="AUTOCOMMIT")
        try:
            with prepared.connect() as a, prepared.connect() as b:
                assert db.fetch_prepared(a, PREPARED_SQL, {"x": 2}) == [{"v": 4}]
                with pytest.raises(Exception, match="already exists"):
                    db.fetch_prepared(b, PREPARED_SQL, {"x": 3})
            with plain.connect() as a, plain.connect() as b:
                assert db.fetch_prepared(a, PREPARED_SQL, {"x": 2}) == [{"v": 4}]
                assert db.fetch_prepared(b, PREPARED_SQL, {"x": 3}) == [{"v": 6}]
        finally:
            prepared.dispose()
            plain.dispose()


def without_links(document: dict) -> dict:
    """The document without its links (they name the host that served it)."""
    return {key: value for key, value in document.items() if key != "links"}


def test_the_service_runs_behind_pgbouncer_in_transaction_pooling(database_url, tmp_path):
    import requests

    with pgbouncer(tmp_path / "pgbouncer", database_url, pool_size=2) as url:
        app = make_test_app(url, database={"url": url, "prepared_statements": False, "pool_size": 8})
        direct = make_test_app(database_url)
        try:
            urls = ["/api/v1/solutions/nearest?lat=45.76&lon=4.83&limit=20", "/api/v1/places?q=villeurb",
                    "/api/v1/solutions/nearest?commune=69266&type=apprentissage", "/api/v1/coverage?commune=35238",
                    "/api/v1/ogc/collections/solutions/items?limit=50", "/tiles/solutions/8/131/90.mvt"]
            expected = {u: without_links(direct.test_client().get(u).get_json()) for u in urls if not u.startswith("/tiles")}
            with serving(app) as base, concurrent.futures.ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(lambda u: (u, requests.get(base + u, headers={"Accept-Encoding": "identity"})),
                                        urls * 10))
            assert all(r.status_code == 200 for _, r in answers), {(u, r.status_code, r.text[:200]) for u, r in answers}
            assert all(without_links(r.json()) == expected[u] for u, r in answers if not u.startswith("/tiles"))
            # the write path too: its transaction stays on one server connection
            assert app.test_client().post("/api/v1/solutions/1/error-reports",
                                          json={"reason": "places"}).status_code == 201
        finally:
            dispose_app(app)
            dispose_app(direct)
