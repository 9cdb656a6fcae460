"""The request's database connection (flaskr's get_db): opened on first use, closed when the request ends."""
from __future__ import annotations

from flask import current_app, g
from sqlalchemy.engine import Connection


def get_db() -> Connection:
    if "db" not in g:
        g.db = current_app.extensions["mapservice.engine"].connect()
    return g.db


def close_db(_exc=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()
