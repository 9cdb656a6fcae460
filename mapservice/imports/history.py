"""The history of imports: who imported which file, when, what it counted; whether it was reverted."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def recent_runs(conn: Connection, limit: int = 50, source: str | None = None) -> list[dict]:
    return [dict(r) for r in conn.execute(text("""
        SELECT id, source, file_name, checksum, territory, imported_by, imported_at, counts, status, reverted_at,
               reverted_by
        FROM import_run WHERE :source IS NULL OR source = :source ORDER BY id DESC LIMIT :limit"""),
        {"source": source, "limit": limit}).mappings()]
