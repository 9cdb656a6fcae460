"""The history of imports: who imported which file, when, what it counted; whether it was reverted."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .records import ImportTerritory

# An import lies within a territory when each of its codes does: a département of it, one of its communes, or
# a commune of one of its départements. A national import (no territory) lies within none.
WITHIN = """r.territory IS NOT NULL AND cardinality(r.territory) > 0 AND NOT EXISTS (
    SELECT 1 FROM unnest(r.territory) AS t(code) LEFT JOIN commune c ON length(t.code) = 5 AND c.code = t.code
    WHERE NOT (t.code = ANY(:deps) OR t.code = ANY(:communes) OR c.departement_code = ANY(:deps)))"""


def recent_runs(conn: Connection, limit: int = 50, source: str | None = None,
                within: ImportTerritory | None = None) -> list[dict]:
    """The latest imports (of `source`; lying `within` a territory when given, all of them otherwise)."""
    return [dict(r) for r in conn.execute(text(f"""
        SELECT id, source, file_name, checksum, territory, imported_by, imported_at, counts, status, reverted_at,
               reverted_by
        FROM import_run r WHERE (CAST(:source AS text) IS NULL OR source = :source)
          AND {'true' if within is None else WITHIN}
        ORDER BY id DESC LIMIT :limit"""),
        {"source": source, "limit": limit,
         "deps": sorted(within.departements) if within else [],
         "communes": sorted(within.communes) if within else []}).mappings()]
