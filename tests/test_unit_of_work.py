"""One unit of work per request: what a request writes is committed when it succeeds, and nothing of it is
kept when it fails or refuses; public reads run outside any transaction."""
import pytest
from sqlalchemy import text

from mapservice import db
from mapservice.db import fetch_prepared
from mapservice.errors import InvalidParameter
from mapservice.web.connection import read_db, write_db

INSERT = text("INSERT INTO error_report (solution_id, reason, message) "
              "SELECT id, 'autre', :marker FROM solution LIMIT 1")


@pytest.fixture
def writing_app(fresh_app):
    """The app with a route that writes a marker row, then answers as asked."""
    @fresh_app.post("/test/write/<outcome>")
    def write(outcome):
        write_db().execute(INSERT, {"marker": outcome})
        if outcome == "refused":
            raise InvalidParameter("refusé", parameter="x")
        if outcome == "crash":
            raise RuntimeError("boom")
        return {}, 201 if outcome == "ok" else 409

    @fresh_app.get("/test/read")
    def read():
        return {"autocommit": read_db().connection.dbapi_connection.autocommit}

    fresh_app.config["PROPAGATE_EXCEPTIONS"] = False
    return fresh_app


def markers(engine):
    with engine.connect() as conn:
        return set(conn.scalars(text("SELECT message FROM error_report WHERE reason = 'autre'")))


def test_a_successful_request_commits_what_it_wrote(writing_app, fresh_engine):
    assert writing_app.test_client().post("/test/write/ok").status_code == 201
    assert markers(fresh_engine) == {"ok"}


@pytest.mark.parametrize("outcome, status", [("refused", 400), ("conflict", 409), ("crash", 500)])
def test_a_failed_or_refused_request_leaves_nothing(writing_app, fresh_engine, outcome, status):
    assert writing_app.test_client().post(f"/test/write/{outcome}").status_code == status
    assert markers(fresh_engine) == set()


def test_public_reads_are_outside_any_transaction(writing_app):
    assert writing_app.test_client().get("/test/read").get_json()["autocommit"] is True


@pytest.mark.parametrize("prepared", [True, False])
def test_a_statement_planned_its_own_way_leaves_the_session_planning_as_usual(engine, prepared):
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT", mapservice_prepared=prepared)
        rows = fetch_prepared(conn, "SELECT current_setting('plan_cache_mode') AS mode, "
                                    "current_setting('enable_memoize') AS memoize", {},
                              generic_plan=True, planner={"enable_memoize": "off"})
        assert rows == [{"mode": "force_generic_plan", "memoize": "off"}]
        assert conn.scalar(text("SHOW plan_cache_mode")) == "auto"
        assert conn.scalar(text("SHOW enable_memoize")) == "on"


@pytest.mark.parametrize("prepared", [True, False])
def test_a_statement_run_prepared_or_not_keeps_its_percent_signs(engine, prepared):
    """A LIKE pattern or a literal '%' means the same whether the statement is prepared or sent as text."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT", mapservice_prepared=prepared)
        rows = fetch_prepared(conn, "SELECT '50 %' AS sign, 'Lyon 3e' LIKE :start || '%' AS starts", {"start": "Lyon"})
        assert rows == [{"sign": "50 %", "starts": True}]


def test_a_session_keeps_a_bounded_number_of_statements_prepared(engine, monkeypatch):
    """Statements differ by the filters written in them: a session prepares each once, up to a bound."""
    monkeypatch.setattr(db, "MAX_PREPARED", 3)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for n in range(7):
            assert fetch_prepared(conn, f"SELECT {n} + :x AS n", {"x": 1}) == [{"n": n + 1}]
            assert conn.scalar(text("SELECT count(*) FROM pg_prepared_statements")) <= 3
        assert fetch_prepared(conn, "SELECT 0 + :x AS n", {"x": 1}) == [{"n": 1}]  # prepared again
