"""The request's database connection (flaskr's get_db), and its unit of work.

A request holds at most one connection, opened on first use:
- `read_db()`: for public reads, outside any transaction (autocommit: no BEGIN/ROLLBACK round trips);
- `write_db()`: the request's transaction. It is committed when the request ends with a status below 400 and
  rolled back otherwise (an error, a refusal, a conflict), so a request writes all or nothing. Once a request
  writes, its reads go through the same transaction and see its own writes.
Core functions take the connection and never commit."""
from __future__ import annotations

from flask import Flask, Response, current_app, g
from sqlalchemy.engine import Connection


def _connection() -> Connection:
    if "db" not in g:
        g.db = current_app.extensions["mapservice.engine"].connect()
        g.db_writing = False
        g.db_read_only = False
    return g.db


def read_db() -> Connection:
    conn = _connection()
    if not g.db_writing and not g.db_read_only:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        g.db_read_only = True
    return conn


def write_db() -> Connection:
    conn = _connection()
    if not g.db_writing:
        if g.db_read_only:
            conn.rollback()  # ends the autocommit connection's (empty) logical transaction
            conn.execution_options(isolation_level=conn.default_isolation_level)
        g.db_writing = True
    return conn


def end_unit_of_work(response: Response) -> Response:
    if g.get("db_writing"):
        if response.status_code < 400:
            g.db.commit()
        else:
            g.db.rollback()
        g.db_writing = False
    return response


def close_db(_exc=None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        if conn.in_transaction():
            conn.rollback()
        conn.close()


def init_app(app: Flask) -> None:
    app.after_request(end_unit_of_work)
    app.teardown_appcontext(close_db)
