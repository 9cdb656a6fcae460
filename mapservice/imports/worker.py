"""The background worker of a workspace import: an entry point like the command line, so it opens its own
transactions (the import's own, rolled back for a dry run, committed with the job's new status for an
application) and records progress on a connection of its own, which the page polls.

The import runs in one transaction that holds the job's advisory lock: if the process dies, PostgreSQL rolls
the transaction back and releases the lock, and the page says the import was interrupted with nothing
written."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..errors import MapserviceError
from ..geocoding import Geocoder
from ..reporting import distances
from . import import_file
from .jobs import LOCK_CLASS
from .reading import ImportFile
from .records import ImportTerritory

log = logging.getLogger("mapservice.imports")
WAIT_FOR_REQUEST_S = 30  # the request that started the job commits within this
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class WorkerOptions:
    upload_dir: Path
    max_bytes: int
    geocoder: Geocoder | None = None


class _Progress:
    """Writes the job's phase and bytes read, at most every PROGRESS_EVERY_S, on an autocommit connection."""

    def __init__(self, side: Connection, job_id: int):
        self.side, self.job_id, self.last = side, job_id, 0.0

    def phase(self, name: str) -> None:
        self._write(name=name, force=True)

    def bytes(self, done: int, total: int | None) -> None:
        self._write(done=done, total=total)

    def _write(self, name: str | None = None, done: int | None = None, total: int | None = None,
               force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        self.side.execute(text("""
            UPDATE import_job SET phase = coalesce(:phase, phase), done = coalesce(:done, done),
                                  total = coalesce(:total, total), updated_at = now() WHERE id = :id"""),
                          {"phase": name, "done": done, "total": total, "id": self.job_id})


def _wait_for(side: Connection, job_id: int, status: str) -> dict | None:
    """The job once the request that asked for `status` has committed (None if it never does)."""
    deadline = time.monotonic() + WAIT_FOR_REQUEST_S
    while time.monotonic() < deadline:
        row = side.execute(text("SELECT * FROM import_job WHERE id = :id"), {"id": job_id}).mappings().first()
        if row is not None and row["status"] == status:
            return dict(row)
        time.sleep(0.05)
    return None


def run_job(engine: Engine, job_id: int, options: WorkerOptions, status: str) -> None:
    """Run job `job_id`'s dry run (`status` planning) or application (`status` applying)."""
    with engine.connect() as side:
        side = side.execution_options(isolation_level="AUTOCOMMIT")
        row = _wait_for(side, job_id, status)
        if row is None:
            log.warning("import job %s: never became %s", job_id, status)
            return
        progress = _Progress(side, job_id)
        try:
            report = _run(engine, row, options, progress)
        except MapserviceError as exc:
            _finish(side, job_id, status="failed", error=exc.detail)
        except Exception:  # noqa: BLE001 — the page must say it failed; the details go to the log
            log.exception("import job %s failed", job_id)
            _finish(side, job_id, status="failed",
                    error="L'import a échoué sur une erreur inattendue : rien n'a été écrit. Réessayez ; si "
                          "l'erreur revient, transmettez le fichier à l'équipe technique.")
        else:
            if status == "planning":
                _finish(side, job_id, status="planned", report=report.as_dict(), fingerprint=report.fingerprint)
            else:
                _refresh_report_distances(engine, job_id)


def _refresh_report_distances(engine: Engine, job_id: int) -> None:
    """The report's distances brought up to date with the applied import now, in the background, rather than
    by the next reader of the report: after a large import they are a full pass (tens of seconds)."""
    started = time.monotonic()
    try:
        with engine.begin() as conn:
            done = distances.refresh(conn)
    except Exception:  # noqa: BLE001 — the import stands; the report's next reader refreshes them
        log.exception("import job %s: the report's distances were not refreshed", job_id)
        return
    log.info("import job %s: the report's distances refreshed (%s) in %.1f s", job_id,
             "all" if done.recomputed is None else f"{done.recomputed} commune-type pairs",
             time.monotonic() - started)


def _run(engine: Engine, row: dict, options: WorkerOptions, progress: _Progress):
    apply = row["status"] == "applying"
    territory = None if row["territory"] is None else ImportTerritory.of(row["territory"])
    source_file = ImportFile.open(options.upload_dir / row["stored_name"], name=row["file_name"])
    try:
        with engine.connect() as conn:
            with conn.begin() as transaction:
                conn.execute(text("SELECT pg_advisory_xact_lock(:c, :id)"), {"c": LOCK_CLASS, "id": row["id"]})
                report = import_file(
                    conn, row["kind"], source_file, apply=apply, source=row["source"], territory=territory,
                    imported_by=_email(conn, row["account_id"]),
                    geocoder=options.geocoder, max_bytes=options.max_bytes,
                    expected_fingerprint=row["fingerprint"] if apply else None,
                    progress=progress.bytes, phase=progress.phase)
                if not apply:
                    transaction.rollback()
                    return report
                # The job's new status commits with the import itself: both or neither.
                conn.execute(text("""
                    UPDATE import_job SET status = 'applied', run_id = :run, report = CAST(:report AS jsonb),
                                          phase = NULL, updated_at = now() WHERE id = :id"""),
                             {"run": report.run_id, "id": row["id"],
                              "report": json.dumps(report.as_dict(), default=str)})
                return report
    finally:
        source_file.close()


def _email(conn: Connection, account_id: int) -> str:
    return conn.scalar(text("SELECT email FROM account WHERE id = :id"), {"id": account_id})


def _finish(side: Connection, job_id: int, **values) -> None:
    side.execute(text("""
        UPDATE import_job SET status = :status, error = :error, report = coalesce(CAST(:report AS jsonb), report),
                              fingerprint = coalesce(:fingerprint, fingerprint), phase = NULL, updated_at = now()
        WHERE id = :id"""), {"id": job_id, "status": values["status"], "error": values.get("error"),
                             "report": json.dumps(values["report"], default=str) if "report" in values else None,
                             "fingerprint": values.get("fingerprint")})
