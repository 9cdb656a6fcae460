"""Backups of the database with PostgreSQL's own tools: `pg_dump --format=custom` (one compressed file, the
whole database: schema, PostGIS data, triggers, dataset versions) and `pg_restore` back into a database, in
one transaction (a restore that fails leaves the database as it was)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from .cluster import find_bindir
from .errors import MapserviceError


class BackupError(MapserviceError):
    title = "Sauvegarde impossible"


def _tool(name: str, bindir: Path | None) -> str:
    try:
        return str(find_bindir(bindir) / name)
    except MapserviceError:
        found = shutil.which(name)
        if not found:
            raise BackupError(f"{name} est introuvable : installez postgresql-client-15.") from None
        return found


def _libpq(url: str) -> tuple[str, dict]:
    """A libpq connection URI without the password, and the environment that carries it."""
    parsed = make_url(url.replace("postgresql+psycopg2://", "postgresql://", 1))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} a échoué : {done.stderr.strip()[-2000:]}")


def backup(url: str, path: Path, bindir: Path | None = None) -> Path:
    """Dump the database at `url` into `path` (custom format); written beside, then renamed, so a failed
    backup never leaves a truncated file under the final name."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    uri, env = _libpq(url)
    try:
        _run([_tool("pg_dump", bindir), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}",
              f"--dbname={uri}"], env)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


# pg_restore empties the search path; PostgreSQL then cannot resolve PostGIS's `=` in a trigger's
# `WHEN (old.geom IS DISTINCT FROM new.geom)` (that syntax cannot name the operator's schema, so pg_dump cannot
# qualify it). The restore script runs with `public` on the search path instead.
EMPTY_SEARCH_PATH = b"SELECT pg_catalog.set_config('search_path', '', false);\n"
PUBLIC_SEARCH_PATH = b"SELECT pg_catalog.set_config('search_path', 'public', false);\n"
# Everything of the database lives in the schema public (PostGIS included): it is emptied first.
RESET = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"


def restore(url: str, path: Path, bindir: Path | None = None) -> None:
    """Replace the content of the database at `url` by the backup `path`, all or nothing: the schema public
    is emptied and the backup's script replayed by psql in one transaction, stopping at the first error."""
    if not Path(path).is_file():
        raise BackupError(f"Fichier de sauvegarde introuvable : {path}")
    uri, env = _libpq(url)
    script = subprocess.Popen([_tool("pg_restore", bindir), "--no-owner", "--no-privileges", "--file=-", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    psql = subprocess.Popen([_tool("psql", bindir), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                             f"--dbname={uri}"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    # One transaction, committed only once the whole backup was read: if pg_restore fails half-way, psql
    # ends without COMMIT and the server rolls everything back.
    complete = False
    try:
        psql.stdin.write(b"BEGIN;\n" + RESET)
        for line in script.stdout:
            psql.stdin.write(PUBLIC_SEARCH_PATH if line == EMPTY_SEARCH_PATH else line)
        if script.wait() == 0:
            psql.stdin.write(b"COMMIT;\n")
            complete = True
    except BrokenPipeError:  # psql stopped at an error: its message says which
        pass
    finally:
        script.stdout.close()
        try:
            psql.stdin.close()
        except BrokenPipeError:
            pass
    read_error = script.wait() != 0
    failed = psql.wait() != 0
    if read_error or failed or not complete:
        script_err = script.stderr.read().decode(errors="replace").strip()
        psql_err = psql.stderr.read().decode(errors="replace").strip()
        raise BackupError(f"La restauration a échoué, la base est inchangée : {(script_err or psql_err)[-2000:]}")
