"""Readiness for a load balancer: the database answers, its schema is at this code's latest migration, and
the reference geography is loaded (without it no search can start)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import db

READINESS = text("""
SELECT (SELECT version_num FROM alembic_version) AS revision,
       (SELECT version FROM dataset_version WHERE name = 'reference') AS reference
""")


def readiness(conn: Connection) -> dict:
    """What is ready, each check true or false, and `ready` when all are."""
    migrated = conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL "
                                "AND to_regclass('dataset_version') IS NOT NULL"))
    row = conn.execute(READINESS).one() if migrated else None
    revision = row.revision if row else None
    checks = {"database": True, "schema": revision == db.head_revision(),
              "reference": row is not None and row.reference is not None}
    return {"ready": all(checks.values()), "checks": checks, "schema_revision": revision}
