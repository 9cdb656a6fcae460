"""`mapservice import …` as an operator runs it: a bad file gets one line naming the line and the column,
a non-zero exit and an untouched database; an import killed (SIGKILL) at any moment leaves the database as
it was; a dry run writes nothing; a second run says there is nothing to change."""
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from mapservice.db import make_engine

from .conftest import ANNUAIRE_35, throwaway_database
from .imports_files import replicated_annuaire

pytestmark = pytest.mark.skipif(not ANNUAIRE_35.exists(), reason="the annuaire extract in ../shared/data is absent")

MAPSERVICE = str(Path(sys.executable).parent / "mapservice")

# What an import may change, summed up in one value.
STATE = text("""
SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (
    SELECT format('s%s:%s:%s:%s', id, version, status, source) AS t FROM site
    UNION ALL SELECT format('o%s:%s:%s:%s', id, version, status, source) FROM solution
    UNION ALL SELECT format('r%s', id) FROM import_run
    UNION ALL SELECT format('i%s:%s', source, source_key) FROM import_record) x""")


@pytest.fixture(scope="module")
def database(server, template):
    with throwaway_database(server, "imports_cli", template=template) as url:
        engine = make_engine(url)
        yield url, engine
        engine.dispose()


def state(engine) -> str:
    with engine.connect() as conn:
        return conn.scalar(STATE)


def mapservice(url, *args):
    """The command run in this process (a process start costs seconds on a busy machine): (status, out, err)."""
    from mapservice.cli import main

    runner = CliRunner()
    with runner.isolation(env={"DATABASE_URL": url}) as (out, err, _):
        sys.argv = ["mapservice", *args]
        try:
            main()
            status = 0
        except SystemExit as exc:
            status = exc.code or 0
    return Result(status, out.getvalue().decode(), err.getvalue().decode())


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def extract_lines():
    return ANNUAIRE_35.read_text(encoding="utf-8-sig").splitlines()


def write(path: Path, content: str | bytes, encoding="utf-8") -> Path:
    if isinstance(content, str):
        content = content.encode(encoding, errors="replace")
    path.write_bytes(content)
    return path


def bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Each bad file, and what its one-line explanation must say."""
    lines = extract_lines()
    header = lines[0]
    big = tmp / "national.csv"
    with big.open("wb") as fh:
        fh.truncate(2 * 1024 ** 3)  # sparse: 2 GB on paper, nothing on disk
    return {
        "latin-1": (write(tmp / "latin1.csv", "\r\n".join(lines), encoding="latin-1"),
                    "ligne 2, colonne « nom_circonscription » : octet 0xe9 invalide en UTF-8"),
        "comma": (write(tmp / "comma.csv", "\r\n".join(l.replace(";", ",") for l in lines)),
                  "ligne 1 : les colonnes sont séparées par « , »"),
        "missing column": (write(tmp / "missing.csv", "\r\n".join([header.replace(";latitude;", ";lat;"),
                                                                    *lines[1:]])),
                           "ligne 1 : colonne « latitude » absente"),
        "empty": (write(tmp / "empty.csv", ""), "ligne 1 : le fichier est vide"),
        "2 GB": (big, "au-delà de la limite de 200 Mo"),
        "spreadsheet": (write(tmp / "annuaire.xlsx.csv", b"PK\x03\x04\x14\x00\x06\x00" + bytes(200)),
                        "ligne 1 : ce n'est pas un fichier CSV mais un classeur Excel"),
        "json": (write(tmp / "annuaire.json.csv", '{"type": "FeatureCollection"}'),
                 "ligne 1 : ce n'est pas un fichier CSV"),
    }


def test_a_bad_file_gets_one_line_naming_line_and_column_and_changes_nothing(database, tmp_path):
    url, engine = database
    before = state(engine)
    for what, (path, expected) in bad_files(tmp_path).items():
        started = time.monotonic()
        result = mapservice(url, "import", "annuaire", str(path))
        assert result.returncode != 0, what
        message = result.stderr.strip().splitlines()
        assert len(message) == 1 and expected in message[0], (what, result.stderr)
        assert time.monotonic() - started < 15, what  # the 2 GB file is refused without being read
    assert state(engine) == before


def test_a_dry_run_writes_nothing_then_the_import_applies_the_same_report(database):
    url, engine = database
    before = state(engine)
    dry = mapservice(url, "import", "annuaire", str(ANNUAIRE_35), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "essai à blanc" in dry.stdout
    assert state(engine) == before
    fingerprint = dry.stdout.rsplit("Empreinte du rapport : ", 1)[1].split()[0]
    applied = mapservice(url, "import", "annuaire", str(ANNUAIRE_35), "--expect", fingerprint, "--by", "ops")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[1] == dry.stdout.splitlines()[1]  # the same counts
    assert f"Empreinte du rapport : {fingerprint}" in applied.stdout
    with engine.connect() as conn:  # the report's distances took the import in, not left to its next reader
        assert conn.scalar(text("SELECT count(*) FROM reporting_pending")) == 0
    again = mapservice(url, "import", "annuaire", str(ANNUAIRE_35), "--expect", fingerprint)
    assert again.returncode != 0 and "relancez l'essai à blanc" in again.stderr
    second = mapservice(url, "import", "annuaire", str(ANNUAIRE_35))
    assert "0 nouveaux, 0 modifiés" in second.stdout and "Rien à changer" in second.stdout
    history = mapservice(url, "import", "history")
    assert "annuaire-education" in history.stdout and "par ops" in history.stdout


def import_backend(engine, pid_hint: str):
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return conn.execute(text("""
            SELECT pid, state, wait_event_type, query FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE :hint"""),
            {"hint": f"%{pid_hint}%"}).mappings().first()


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError("timed out")


def wait_until_gone(engine):
    """The killed client's server process ends its transaction (rolled back); idle ones are the pool's."""
    # outside a transaction: pg_stat_activity is read once per transaction
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        wait_for(lambda: not conn.execute(text("""
            SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND backend_type = 'client backend' AND state <> 'idle'""")).first())


def test_an_import_killed_at_any_moment_leaves_the_database_as_it_was(server, template, tmp_path):
    big = replicated_annuaire(tmp_path / "annuaire-x20.csv", 20)
    with throwaway_database(server, "imports_kill", template=template) as url:
        engine = make_engine(url, pool_size=2)
        before = state(engine)
        # 1. while staging and comparing rows (temporary tables only)
        process = subprocess.Popen([MAPSERVICE, "import", "annuaire", str(big)],
                                   env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        wait_for(lambda: import_backend(engine, "import_stage"))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        wait_until_gone(engine)
        assert state(engine) == before

        # 2. while applying: it waits for a curator's save of a site it updates (behind it, or behind the tile
        # bookkeeping row every catalogue write updates)
        curator = engine.connect()
        transaction = curator.begin()
        curator.execute(text("UPDATE site SET phone = '02 99 00 00 00' WHERE source_key = '0350030T'"))
        process = subprocess.Popen([MAPSERVICE, "import", "annuaire", str(big)],
                                   env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        blocked = wait_for(lambda: (b := import_backend(engine, "WITH %")) and b["wait_event_type"] == "Lock" and b)
        assert blocked["query"].lstrip().startswith(("WITH inserted AS (\n    INSERT INTO site",
                                                     "WITH updated AS (\n    UPDATE site"))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        transaction.rollback()
        curator.close()
        wait_until_gone(engine)
        assert state(engine) == before

        # 3. and a run left alone does the whole import
        assert mapservice(url, "import", "annuaire", str(big)).returncode == 0
        assert state(engine) != before
        engine.dispose()
