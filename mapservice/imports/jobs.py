"""Imports started from the workspace: an uploaded file's dry run, its report, then the application of exactly
that report, each run by a background worker (worker.py) while the page shows its progress.

`import_job` keeps the job: who, which file (stored in the upload directory), the territory resolved when it
was uploaded, its status (planning → planned → applying → applied; failed; abandoned), the progress of the
phase running, the dry run's report and fingerprint, and the import it became. The worker holds an advisory
lock (LOCK_CLASS, job id) in its import's transaction: a job still « running » whose lock nobody holds lost
its worker (the process died); its transaction was rolled back with it, so nothing was written.

Every function checks the actor: a job is its uploader's (a national administrator sees all), and the kind
and territory are those `import_territory` allows, checked again before applying."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..accounts import audit
from ..accounts.values import Actor
from ..errors import Forbidden, ImportOutdated, InvalidParameter, NotFound
from . import KINDS, KIND_LABELS, import_territory, importable_kinds
from .history import recent_runs
from .records import ImportTerritory
from .revert import revert_run

LOCK_CLASS = 7310  # advisory locks (LOCK_CLASS, job id): held by the worker running that job
RUNNING = ("planning", "applying")
# A running job's worker takes its lock within a moment of the request that started it: without a lock after
# this long, the worker is gone.
LOST_AFTER_S = 30
PHASE_LABELS = {"attente": "en attente", "lecture": "lecture du fichier", "contrôles": "contrôle des positions",
                "comparaison": "comparaison avec le catalogue", "écriture": "écriture dans le catalogue"}


def source_of(kind: str, source: str | None) -> str | None:
    """The job's source as typed: a partner's name (required, short), or which CFA list (optional)."""
    if kind not in KINDS:
        raise InvalidParameter(f"Type d'import inconnu « {kind} » : choisissez dans la liste.", parameter="kind")
    source = (source or "").strip() or None
    if kind == "partners":
        if source is None:
            raise InvalidParameter("Donnez le nom du partenaire (par exemple « mission-locale-rennes ») : il "
                                   "distingue ses fiches de celles des autres.", parameter="source")
        if len(source) > 60:
            raise InvalidParameter("Le nom du partenaire fait plus de 60 caractères.", parameter="source")
    elif kind == "cfa":
        if source is not None and source not in ("sifa", "greta", "mfr"):
            raise InvalidParameter("Liste de CFA : sifa, greta ou mfr.", parameter="source")
    else:
        source = None
    return source


def create(conn: Connection, actor: Actor, kind: str, source: str | None, file_name: str, stored_name: str,
           size: int, territory: ImportTerritory | None) -> int:
    """A new job about to be dry-run (the worker starts once this is committed)."""
    return conn.scalar(text("""
        INSERT INTO import_job (account_id, kind, source, file_name, stored_name, size, territory, status, phase,
                                total)
        VALUES (:account, :kind, :source, :file_name, :stored, :size, :territory, 'planning', 'attente', :size)
        RETURNING id"""), {"account": actor.account_id, "kind": kind, "source": source, "file_name": file_name,
                           "stored": stored_name, "size": size,
                           "territory": None if territory is None else territory.codes()})


# A running job whose worker's lock nobody holds any more.
LOST = f"""j.status IN ('planning', 'applying') AND j.updated_at < now() - interval '{LOST_AFTER_S} seconds'
       AND NOT EXISTS (SELECT 1 FROM pg_locks l
                       WHERE l.locktype = 'advisory' AND l.classid = {LOCK_CLASS} AND l.objid::bigint = j.id
                         AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database
                                                              WHERE datname = current_database()))"""
JOB = f"""
SELECT j.*, a.email AS account_email, {LOST} AS lost
FROM import_job j JOIN account a ON a.id = j.account_id WHERE j.id = :id
"""


def job(conn: Connection, actor: Actor, job_id: int) -> dict:
    """The job, when it is the actor's (or the actor is a national administrator)."""
    row = conn.execute(text(JOB), {"id": job_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucun import n'a le numéro {job_id}.", parameter="id")
    if row["account_id"] != actor.account_id and not actor.is_national:
        audit.record(conn, "forbidden", account_id=actor.account_id, email=actor.email, address=actor.address,
                     detail=f"import job {job_id}")
        raise Forbidden("Cet import a été lancé par un autre compte : vous ne pouvez ni le voir ni l'appliquer.")
    return dict(row)


def progress(row: dict) -> dict:
    """What the page shows (and polls) of a job: status, the phase running and how far it is."""
    running = row["status"] in RUNNING and not row["lost"]
    percent = None
    if row["phase"] == "lecture" and row["total"]:
        percent = min(100, round(100 * row["done"] / row["total"]))
    return {"id": row["id"], "status": "lost" if row["lost"] else row["status"], "running": running,
            "phase": PHASE_LABELS.get(row["phase"] or "", row["phase"]), "percent": percent,
            "applying": row["status"] == "applying"}


def recent_jobs(conn: Connection, actor: Actor, limit: int = 10) -> list[dict]:
    return [dict(r) for r in conn.execute(text(f"""
        SELECT id, kind, source, file_name, CASE WHEN {LOST} THEN 'lost' ELSE status END AS status, created_at,
               run_id
        FROM import_job j WHERE account_id = :account AND status <> 'abandoned' ORDER BY id DESC LIMIT :limit"""),
        {"account": actor.account_id, "limit": limit}).mappings()]


def _allowed_again(conn: Connection, actor: Actor, row: dict) -> None:
    """The actor may still import this kind, over the same territory as when the file was uploaded."""
    territory = import_territory(conn, actor, row["kind"])
    codes = None if territory is None else territory.codes()
    if codes != row["territory"]:
        raise ImportOutdated("Votre territoire a changé depuis l'envoi du fichier : renvoyez-le pour un nouvel "
                             "essai à blanc.")


def request_apply(conn: Connection, actor: Actor, job_id: int, fingerprint: str) -> None:
    """Mark the job for application by a worker: exactly the report its dry run showed (`fingerprint`)."""
    row = job(conn, actor, job_id)
    _allowed_again(conn, actor, row)
    if row["status"] != "planned":
        raise InvalidParameter("Cet import n'attend pas d'être appliqué (déjà appliqué, en cours ou abandonné).",
                               parameter="id")
    if not fingerprint or fingerprint != row["fingerprint"]:
        raise ImportOutdated("Ce n'est pas le rapport de cet essai à blanc : rechargez la page avant d'appliquer.")
    changed = conn.execute(text("""
        UPDATE import_job SET status = 'applying', phase = 'attente', done = 0, error = NULL, updated_at = now()
        WHERE id = :id AND status = 'planned'"""), {"id": job_id}).rowcount
    if not changed:
        raise InvalidParameter("Cet import vient d'être lancé par ailleurs.", parameter="id")


def request_dry_run(conn: Connection, actor: Actor, job_id: int) -> None:
    """Run the dry run again (after a failure, a lost worker, or a catalogue that changed since)."""
    row = job(conn, actor, job_id)
    _allowed_again(conn, actor, row)
    if row["status"] in RUNNING and not row["lost"] or row["status"] in ("applied", "abandoned"):
        raise InvalidParameter("Cet import est en cours, appliqué ou abandonné.", parameter="id")
    conn.execute(text("""
        UPDATE import_job SET status = 'planning', phase = 'attente', done = 0, error = NULL, report = NULL,
                              fingerprint = NULL, updated_at = now() WHERE id = :id"""), {"id": job_id})


def abandon(conn: Connection, actor: Actor, job_id: int, upload_dir: Path) -> None:
    """Forget a job that was not applied, and its file."""
    row = job(conn, actor, job_id)
    if row["status"] in RUNNING and not row["lost"] or row["status"] == "applied":
        raise InvalidParameter("Un import en cours ou appliqué ne s'abandonne pas (un import appliqué s'annule "
                               "depuis l'historique).", parameter="id")
    conn.execute(text("UPDATE import_job SET status = 'abandoned', updated_at = now() WHERE id = :id"),
                 {"id": job_id})
    (upload_dir / row["stored_name"]).unlink(missing_ok=True)


# -- history -----------------------------------------------------------------------------------------------

def kind_of_source(source: str) -> str:
    if source.startswith("partenaire:"):
        return "partners"
    return "cfa" if source.startswith("cfa-") else "annuaire"


def runs(conn: Connection, actor: Actor) -> list[dict]:
    """The imports applied within the actor's territory (all of them for a national administrator), each
    with whether the actor may revert it."""
    kinds = importable_kinds(actor)
    if not kinds:
        return []
    territory = import_territory(conn, actor, kinds[0])
    found = recent_runs(conn, within=territory)
    for run in found:
        run["revertable"] = run["status"] == "applied" and kind_of_source(run["source"]) in kinds
        run["kind_label"] = KIND_LABELS[kind_of_source(run["source"])]
    return found


def revert(conn: Connection, actor: Actor, run_id: int) -> dict[str, int]:
    """Revert an applied import of the actor's territory and of a kind it may import (else Forbidden)."""
    visible = {r["id"]: r for r in runs(conn, actor)}
    if run_id not in visible or not visible[run_id]["revertable"]:
        exists = conn.scalar(text("SELECT status FROM import_run WHERE id = :id"), {"id": run_id})
        if exists is None:
            raise NotFound(f"Import n° {run_id} introuvable.", parameter="run")
        if run_id in visible:
            raise InvalidParameter(f"L'import n° {run_id} est déjà annulé.", parameter="run")
        audit.record(conn, "forbidden", account_id=actor.account_id, email=actor.email, address=actor.address,
                     detail=f"revert import {run_id}")
        raise Forbidden(f"L'import n° {run_id} n'est pas de votre territoire ou de votre rôle : vous ne pouvez "
                        "pas l'annuler.")
    return revert_run(conn, run_id, actor.email)
