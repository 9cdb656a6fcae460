"""Bookkeeping of loaded datasets and what the database holds."""
from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection


def fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def loaded_version(conn: Connection, name: str) -> str | None:
    return conn.scalar(text("SELECT version FROM dataset_version WHERE name = :name"), {"name": name})


def record(conn: Connection, name: str, version: str) -> None:
    conn.execute(text("""
        INSERT INTO dataset_version (name, version) VALUES (:name, :version)
        ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, loaded_at = now()"""),
        {"name": name, "version": version})


def analyze(conn: Connection, *tables: str) -> None:
    """Fresh statistics right after a load (in its transaction), so that the planner keeps its index plans
    (KNN, point-in-polygon) from the first query on."""
    for table in tables:
        conn.execute(text(f"ANALYZE {table}"))


COUNT_QUERIES = {
    "communes": "SELECT count(*) FROM commune WHERE kind = 'COM'",
    "arrondissements": "SELECT count(*) FROM commune WHERE kind = 'ARM'",
    "departements": "SELECT count(*) FROM departement WHERE geom IS NOT NULL",
    "regions": "SELECT count(*) FROM region WHERE geom IS NOT NULL",
    "academies": "SELECT count(*) FROM academie WHERE geom IS NOT NULL",
    "sites": "SELECT count(*) FROM site WHERE status = 'published'",
    "solutions": "SELECT count(*) FROM solution WHERE status = 'published'",
    "example_solutions": "SELECT count(*) FROM solution WHERE status = 'published' AND is_example",
    "psad_platforms": "SELECT count(*) FROM psad_platform WHERE status = 'published'",
}


COUNTS = text("SELECT " + ", ".join(f"({q}) AS {name}" for name, q in COUNT_QUERIES.items()))


def counts(conn: Connection) -> dict[str, int]:
    """What is loaded, in one round trip."""
    return dict(conn.execute(COUNTS).mappings().one())
