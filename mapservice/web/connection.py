"""The request's database connection (flaskr's get_db), and its unit of work.

A request holds at most one connection, opened on first use:
- `read_db()`: for public reads, outside any transaction (autocommit: no BEGIN/ROLLBACK round trips), on the
  read replica when one is configured (DATABASE_REPLICA_URL) and answers, else on the primary's pool of reads;
  the teams' pages and APIs (`reads_primary`) always read the primary;
- `write_db()`: the request's transaction, on the primary. It is committed when the request ends with a status
  below 400 and rolled back otherwise (an error, a refusal, a conflict), so a request writes all or nothing.
  Once a request writes, its reads go through the same transaction and see its own writes; and for
  `read_primary_after_write_s` after a committed write, the same browser's reads stay on the primary (a
  cookie of its own, not the session: public answers must not vary on the session), so a curator sees their
  own edit even while the replica lags behind.
Core functions take the connection and never commit."""
from __future__ import annotations

import time

import psycopg2
from flask import Blueprint, Flask, Response, current_app, g, request
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ..db import Databases, closed_by_server

PRIMARY_UNTIL = "mapservice_primary_until"


def databases() -> Databases:
    return current_app.extensions["mapservice.databases"]


def _recently_wrote() -> bool:
    until = request.cookies.get(PRIMARY_UNTIL, "")
    return until.isascii() and until.isdigit() and int(until) > time.time()


def reads_primary(bp: Blueprint) -> None:
    """The requests of `bp` read the primary, replica or not. The teams' pages and APIs write on their read
    connection what a rollback must not erase: the audit log of sign-ins, failed attempts (which the throttling
    counts) and refusals. A standby would refuse those writes. Their traffic is small beside the public's."""
    bp.record_once(lambda state: state.app.extensions.setdefault("mapservice.primary_blueprints", set()).add(bp.name))


def _reads_primary() -> bool:
    return (request.blueprint in current_app.extensions.get("mapservice.primary_blueprints", ())
            or _recently_wrote())


def read_db() -> Connection:
    if "db" not in g:
        g.db = databases().connect_for_reads(from_primary=_reads_primary())
        g.db_writing = False
    return g.db


def write_db() -> Connection:
    dbs = databases()
    if "db" not in g or dbs.is_read_only(g.db):
        if "db" in g:
            g.pop("db").close()
        g.db = dbs.primary.connect()
    g.db_writing = True
    return g.db


def end_unit_of_work(response: Response) -> Response:
    if g.get("db_writing"):
        if response.status_code < 400:
            g.db.commit()
            if databases().replica is not None:
                settings = current_app.config["SETTINGS"]
                seconds = settings.database.read_primary_after_write_s
                response.set_cookie(PRIMARY_UNTIL, str(int(time.time() + seconds) + 1), max_age=int(seconds) + 1,
                                    httponly=True, samesite="Lax",
                                    secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
        else:
            g.db.rollback()
        g.db_writing = False
    return response


def close_db(_exc=None) -> None:
    conn = g.pop("db", None)
    if conn is None:
        return
    try:
        if not conn.invalidated and closed_by_server(conn.connection.dbapi_connection):
            # The server went away after the request's last statement: the pool's reset would fail on it.
            conn.invalidate()
        if conn.in_transaction():
            conn.rollback()
        conn.close()
    except (DBAPIError, psycopg2.Error):
        # The server went away during the request (a restart): resetting the connection for the pool failed
        # (psycopg2's error comes raw from the pool's reset). Drop it instead; the answer (a 503 already, or
        # a success read before) stands.
        if not conn.closed and not conn.invalidated:
            conn.invalidate()


def init_app(app: Flask) -> None:
    app.after_request(end_unit_of_work)
    app.teardown_appcontext(close_db)
