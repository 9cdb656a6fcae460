"""The operator command line."""
from alembic.script import ScriptDirectory

from mapservice.cli import cli
from mapservice.db import MIGRATIONS


def test_db_status_reports_the_schema_revision(runner, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(cli, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "DATABASE_URL" in result.output
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert f"schema revision: {head}" in result.output


def test_load_reference_twice_is_a_no_op(runner, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(cli, ["load", "reference"])
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output


def test_db_start_refuses_when_an_external_database_is_configured(runner, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(cli, ["db", "start"])
    assert result.exit_code != 0
    assert "DATABASE_URL is set" in result.output
