"""/equipes/imports: a team uploads a file, reads the dry run's report, applies exactly that report, and
follows its progress; the history of its territory's imports, with revert. Thin: the core (imports.jobs)
checks the actor, the kind and the territory; a background worker (imports.worker) runs each import."""
from __future__ import annotations

import threading
import uuid
from pathlib import Path

from flask import (
    Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for,
)
from flask_login import login_required
from werkzeug.exceptions import RequestEntityTooLarge

from ...errors import ImportRefused, InvalidParameter, MapserviceError
from ...geocoding import geocoder_from
from ...imports import KIND_LABELS, ImportFile, check_file, import_territory, importable_kinds, jobs
from ...imports.report import FIELD_LABELS
from ...imports.worker import WorkerOptions, run_job
from ...links import safe_link
from ...taxonomy import ROLES
from ..connection import read_db, reads_primary, write_db
from ..map_page import static_url
from .forms import private_forms
from .session import page_actor

bp = Blueprint("imports_workspace", __name__)
reads_primary(bp)
SUFFIXES = (".csv", ".txt", ".geojson", ".json")
SHOWN = 200  # entries of each list of the report shown on the page (the whole report: rapport.json)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the form's other fields, over the file's size
# Rows read while the upload request waits, for the form to refuse a bad file at once; a fault further down
# fails the dry run, whose page says it.
CHECKED_ROWS = 10_000


def _settings():
    return current_app.config["SETTINGS"]


def _upload_dir() -> Path:
    settings = _settings()
    return settings.imports.resolved_upload_dir(settings.database.resolved_data_dir)


def _max_mb() -> str:
    return f"{_settings().imports.max_mb:g}"


@bp.before_request
def limit_upload():
    # The upload is refused from its announced size, before it is read (RequestEntityTooLarge below).
    request.max_content_length = _settings().imports.max_bytes + FORM_OVERHEAD


private_forms(bp)  # after limit_upload: the CSRF check reads the form


@bp.context_processor
def shared():
    return {"static_url": static_url, "safe_link": safe_link, "roles": ROLES, "kind_labels": KIND_LABELS,
            "field_labels": FIELD_LABELS, "shown": SHOWN, "max_mb": _max_mb()}


@bp.errorhandler(MapserviceError)
def refused(exc: MapserviceError):
    return render_template("workspace/error.html", error=exc), exc.status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc):
    error = InvalidParameter(f"Le fichier dépasse la limite de {_max_mb()} Mo : découpez-le (par département, "
                             "par exemple) et envoyez chaque partie.", parameter="file")
    return _upload_page(413, error=error, values={})


def _upload_page(status: int = 200, **context):
    actor = page_actor()
    kinds = importable_kinds(actor)
    if not kinds:
        import_territory(read_db(), actor, "partners")  # refused, and logged, for a partner's account
    conn = read_db()
    territory = import_territory(conn, actor, kinds[0])
    return render_template(
        "imports/upload.html", kinds=kinds, territory=territory, recent=jobs.recent_jobs(conn, actor),
        runs=jobs.runs(conn, actor), **{"values": {}, **context}), status


@bp.get("/")
@login_required
def upload_form():
    return _upload_page()


def _start(job_id: int, status: str) -> None:
    """The worker, in a thread of this process; it starts once this request has committed the job."""
    settings = _settings()
    options = WorkerOptions(upload_dir=_upload_dir(), max_bytes=settings.imports.max_bytes,
                            geocoder=geocoder_from(settings.geocoder))
    engine = current_app.extensions["mapservice.engine"]
    threading.Thread(target=run_job, args=(engine, job_id, options, status), name=f"import-job-{job_id}",
                     daemon=True).start()


@bp.post("/")
@login_required
def upload():
    actor = page_actor()
    form = request.form.to_dict()
    kind = form.get("kind", "")
    conn = write_db()
    upload_file = request.files.get("file")
    try:
        source = jobs.source_of(kind, form.get("source"))
        territory = import_territory(conn, actor, kind)
        if upload_file is None or not upload_file.filename:
            raise InvalidParameter("Choisissez le fichier à importer.", parameter="file")
        file_name = Path(upload_file.filename.replace("\\", "/")).name[:200]
        if not file_name.lower().endswith(SUFFIXES):
            raise InvalidParameter(f"« {file_name} » : il faut un fichier CSV (.csv) ou, pour un partenaire, "
                                   "GeoJSON (.geojson).", parameter="file")
        stored = _store(upload_file, file_name)
        try:
            source_file = ImportFile.open(stored, name=file_name)
            try:
                check_file(conn, kind, source_file, source, _settings().imports.max_bytes, CHECKED_ROWS)
            finally:
                source_file.close()
        except MapserviceError:
            stored.unlink(missing_ok=True)
            raise
    except (InvalidParameter, ImportRefused) as exc:
        return _upload_page(400, error=exc, values=form)
    job_id = jobs.create(conn, actor, kind, source, file_name, stored.name, stored.stat().st_size, territory)
    _start(job_id, "planning")
    return redirect(url_for("imports_workspace.show", job_id=job_id))


def _store(upload_file, file_name: str) -> Path:
    """The upload, copied under the upload directory with a name of our own (never the user's)."""
    directory = _upload_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stored = directory / f"{uuid.uuid4().hex}{Path(file_name).suffix.lower()}"
    upload_file.save(stored)
    if stored.stat().st_size == 0:
        stored.unlink()
        raise ImportRefused(f"{file_name}, ligne 1 : le fichier est vide.")
    return stored


@bp.get("/<int:job_id>")
@login_required
def show(job_id: int):
    row = jobs.job(read_db(), page_actor(), job_id)
    return render_template("imports/job.html", job=row, state=jobs.progress(row), report=row["report"])


@bp.get("/<int:job_id>/etat")
@login_required
def state(job_id: int):
    return jsonify(jobs.progress(jobs.job(read_db(), page_actor(), job_id)))


@bp.get("/<int:job_id>/rapport.json")
@login_required
def full_report(job_id: int):
    row = jobs.job(read_db(), page_actor(), job_id)
    if row["report"] is None:
        raise InvalidParameter("Pas encore de rapport : l'essai à blanc est en cours.", parameter="id")
    response = jsonify(row["report"])
    response.headers["Content-Disposition"] = f'attachment; filename="rapport-import-{job_id}.json"'
    return response


@bp.post("/<int:job_id>/appliquer")
@login_required
def apply(job_id: int):
    jobs.request_apply(write_db(), page_actor(), job_id, request.form.get("fingerprint", ""))
    _start(job_id, "applying")
    return redirect(url_for("imports_workspace.show", job_id=job_id))


@bp.post("/<int:job_id>/essai")
@login_required
def dry_run_again(job_id: int):
    jobs.request_dry_run(write_db(), page_actor(), job_id)
    _start(job_id, "planning")
    return redirect(url_for("imports_workspace.show", job_id=job_id))


@bp.post("/<int:job_id>/abandon")
@login_required
def abandon(job_id: int):
    jobs.abandon(write_db(), page_actor(), job_id, _upload_dir())
    flash("Import abandonné : rien n'a été écrit, le fichier est effacé.")
    return redirect(url_for("imports_workspace.upload_form"))


@bp.post("/historique/<int:run_id>/annuler")
@login_required
def revert(run_id: int):
    conn = write_db()
    try:
        counts = jobs.revert(conn, page_actor(), run_id)
    except MapserviceError as exc:
        if exc.status == 403 or exc.status == 404:
            raise
        return _upload_page(exc.status, error=exc)
    flash(f"Import n° {run_id} annulé : {counts['site_deleted']} lieu(x) et {counts['solution_deleted']} "
          f"solution(s) retirés, {counts['site_restored'] + counts['solution_restored']} fiche(s) rétablie(s).")
    return redirect(url_for("imports_workspace.upload_form"))
