"""Bookkeeping of loaded datasets and what the database holds."""
from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


def fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def loaded_version(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT version FROM dataset_version WHERE name = :name"), {"name": name})


def record(conn: Connection, name: str, version: str) -> None:
    conn.execute(text("""
        INSERT INTO dataset_version (name, version) VALUES (:name, :version)
        ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, loaded_at = now()"""),
        {"name": name, "version": version})


def analyze(engine: Engine, *tables: str) -> None:
    """Fresh statistics right after a load, so that the planner keeps its index plans (KNN, point-in-polygon)."""
    with engine.connect() as conn:
        for table in tables:
            conn.execute(text(f"ANALYZE {table}"))
        conn.commit()


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


def counts(engine_or_conn) -> dict[str, int]:
    """What is loaded, in one round trip."""
    sql = "SELECT " + ", ".join(f"({q}) AS {name}" for name, q in COUNT_QUERIES.items())
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return dict(conn.execute(text(sql)).mappings().one())
    return dict(engine_or_conn.execute(text(sql)).mappings().one())
