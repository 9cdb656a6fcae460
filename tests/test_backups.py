"""`mapservice db backup` / `restore`: a round trip on the demo catalogue gives back the same data, and a
failed restore leaves the database as it was."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from mapservice import datasets
from mapservice.cli import cli
from mapservice.db import make_engine

# What must come back identical: counts, and a digest of the catalogue's rows and positions.
DIGEST = text("""
SELECT md5(string_agg(s.id || ':' || s.title || ':' || site.name || ':' || ST_AsText(site.geom) || ':' || s.status, ',' ORDER BY s.id))
FROM solution s JOIN site ON site.id = s.site_id
""")


def state(url: str) -> tuple:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (datasets.counts(conn), conn.scalar(DIGEST), conn.scalar(text("SELECT version_num FROM alembic_version")),
                    conn.scalar(text("SELECT count(*) FROM catalogue_change_horizon")))
    finally:
        engine.dispose()


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["db", *args], env={"DATABASE_URL": url}, catch_exceptions=False)


@pytest.mark.slow
def test_backup_then_restore_gives_back_the_demo_catalogue(fresh_database_url, empty_database_url, tmp_path):
    original = state(fresh_database_url)
    dump = tmp_path / "catalogue.dump"
    done = run(fresh_database_url, "backup", "--output", str(dump))
    assert done.exit_code == 0, done.output
    assert dump.stat().st_size > 1_000_000 and dump.read_bytes()[:5] == b"PGDMP"

    # into an empty database
    assert run(empty_database_url, "restore", str(dump), "--yes").exit_code == 0
    assert state(empty_database_url) == original

    # over a database whose data was damaged since
    engine = make_engine(fresh_database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM solution WHERE id IN (SELECT id FROM solution ORDER BY id LIMIT 100)"))
    engine.dispose()
    assert state(fresh_database_url) != original
    assert run(fresh_database_url, "restore", str(dump), "--yes").exit_code == 0
    assert state(fresh_database_url) == original


def test_a_broken_backup_file_changes_nothing(fresh_database_url, tmp_path):
    original = state(fresh_database_url)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP" + b"\0" * 100)
    done = CliRunner().invoke(cli, ["db", "restore", str(broken), "--yes"], env={"DATABASE_URL": fresh_database_url})
    assert done.exit_code != 0
    assert state(fresh_database_url) == original
