"""Positions in the catalogue's change log (migration 0006), shared by the bundles (which say where they
stand), the tile archives (rebuilt when their area changed) and the change feed (which pages through it).

A position is the snapshot's xmin: every transaction older than it has ended, so the log's rows of
transactions from xmin on are exactly the changes a reader at that position has not necessarily seen. The
feed's cursor refines it with a row and a position in the row's ids, and travels as an opaque token."""
from __future__ import annotations

import base64

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..values import FeedCursor

HORIZON = text("""
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
       (SELECT pruned_through::text::bigint FROM catalogue_change_horizon) AS pruned_through
""")


def position(conn: Connection) -> int:
    """Where the catalogue stands as `conn` sees it (its snapshot's xmin)."""
    return conn.execute(HORIZON).one().xmin


def token(cursor: FeedCursor) -> str:
    raw = f"{cursor.txid},{cursor.change_id},{cursor.position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def from_token(raw: str) -> FeedCursor:
    """The cursor of a token this service made; ValueError for anything else."""
    decoded = base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)).decode("ascii")
    parts = decoded.split(",")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        raise ValueError(raw)
    return FeedCursor(*(int(p) for p in parts))
