"""/equipes/: the workspace's pages. Thin: parse the form (curation.inputs), call the core with the session's
actor, render. A refused, invalid or stale save renders the form again (4xx, so the unit of work rolls back)."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user

from ... import history, mail
from ...accounts import login, permissions, store
from ...accounts.store import AccountSpec
from ...accounts.values import Action, Ref
from ...curation import dashboard as dashboard_core
from ...curation import freshness, inbox, inputs, revert as revert_core, sites, solutions, territories
from ...errors import InvalidParameter, MapserviceError, NotFound, StaleVersion, TooManyAttempts, Unauthorized
from ...geocoding import geocoder_from
from ...links import safe_link
from ...taxonomy import (
    CATALOGUE_STATUS_LABELS, ERROR_REPORT_REASONS, ERROR_REPORT_STATUSES, ROLES, SERVICE_CIVIQUE_FORMULAS, SITE_KINDS,
    SOLUTION_TYPES, VOIES,
)
from ..connection import read_db, reads_primary, write_db
from ..map_page import static_url
from .forms import private_forms
from .invitations import invite as invite_account, public_url, scope_values
from .session import SessionUser, address, limits, local_path, page_actor

bp = Blueprint("workspace", __name__)
reads_primary(bp)
HISTORY_ENTITIES = {"site": "lieu", "solution": "solution", "account": "compte", "psad_platform": "plateforme",
                    "error_report": "signalement"}
# How many rows a page lists at most: beyond, it says so (and offers a search, a filter or the next ones).
SITES_SHOWN = 100
PLACES_SHOWN = 2000
OVERDUE_SHOWN = 500
REPORTS_SHOWN = 200


private_forms(bp)


@bp.context_processor
def shared():
    return {"static_url": static_url, "safe_link": safe_link, "roles": ROLES, "site_kinds": SITE_KINDS,
            "solution_types": SOLUTION_TYPES, "voies": VOIES, "formulas": SERVICE_CIVIQUE_FORMULAS,
            "statuses": CATALOGUE_STATUS_LABELS, "report_statuses": ERROR_REPORT_STATUSES,
            "reasons": ERROR_REPORT_REASONS, "entities": HISTORY_ENTITIES}


@bp.errorhandler(MapserviceError)
def refused(exc: MapserviceError):
    return render_template("workspace/error.html", error=exc), exc.status


def _render(template: str, status: int = 200, **context):
    return render_template(f"workspace/{template}", **context), status


def _settings():
    return current_app.config["SETTINGS"]


def _search() -> str | None:
    """The page's search (a name, a commune or an INSEE code), from its address."""
    return request.args.get("q", "").strip()[:100] or None


def _first(read: Callable[[int], list[dict]], shown: int) -> dict:
    """The first `shown` rows that `read(limit)` gives, and whether there are more (it reads one more)."""
    rows = read(shown + 1)
    return {"rows": rows[:shown], "more": len(rows) > shown, "shown": shown}


def _public_url(endpoint: str, **values) -> str:
    return public_url(_settings(), endpoint, **values)


# -- Getting in ---------------------------------------------------------------------------------------

@bp.route("/connexion", methods=["GET", "POST"], endpoint="login")
def login_page():
    back = local_path(request.values.get("next"))  # the page that asked for a session, if any
    if request.method == "GET":
        return _render("login.html", next=back)
    email = request.form.get("email", "")
    try:
        actor, generation = login.authenticate(read_db(), email, request.form.get("password", ""), address(),
                                               limits())
    except (Unauthorized, TooManyAttempts) as exc:
        return _render("login.html", exc.status, error=exc.detail, email=email, next=back)
    session.clear()
    session.permanent = True
    login_user(SessionUser(actor, generation))
    return redirect(back or url_for("workspace.dashboard"))


@bp.post("/deconnexion")
def logout():
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté.")
    return redirect(url_for("workspace.login"))


@bp.post("/deconnexion-partout")
@login_required
def logout_everywhere():
    login.logout_everywhere(write_db(), page_actor())
    logout_user()
    session.clear()
    flash("Toutes vos sessions sont fermées, sur tous vos appareils.")
    return redirect(url_for("workspace.login"))


def _password_page(purpose: str):
    secret = request.values.get("jeton", "")
    if request.method == "GET":
        pending = store.pending_token(read_db(), secret, purpose)
        if pending is None:
            return _render("password.html", 400, expired=True, purpose=purpose)
        return _render("password.html", email=pending["email"], secret=secret, purpose=purpose)
    password, again = request.form.get("password", ""), request.form.get("password_again", "")
    try:
        if password != again:
            raise InvalidParameter("Les deux mots de passe ne sont pas identiques.", parameter="password_again")
        store.set_password(write_db(), secret, purpose, password)
    except InvalidParameter as exc:
        return _render("password.html", 400, error=exc.detail, secret=secret, purpose=purpose,
                       email=(store.pending_token(read_db(), secret, purpose) or {}).get("email"))
    flash("Mot de passe enregistré : connectez-vous.")
    return redirect(url_for("workspace.login"))


@bp.route("/activer", methods=["GET", "POST"])
def activate():
    return _password_page("invitation")


@bp.route("/nouveau-mot-de-passe", methods=["GET", "POST"])
def reset_password():
    return _password_page("reset")


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
def forgot_password():
    if request.method == "GET":
        return _render("forgot.html")
    ws = _settings().workspace
    found = store.request_reset(write_db(), request.form.get("email", ""), dt.timedelta(hours=ws.reset_hours))
    if found is not None and mail.configured(_settings().mail):
        account = store.account(write_db(), found[0])
        mail.reset(_settings().mail, account["email"], _public_url("workspace.reset_password", jeton=found[1]),
                   ws.reset_hours)
    # The same answer whether the address has an account or not.
    return _render("forgot.html", sent=True)


# -- My territory -------------------------------------------------------------------------------------

@bp.get("/")
@login_required
def dashboard():
    actor = page_actor()
    conn = read_db()
    return _render("dashboard.html", actor=actor,
                   board=dashboard_core.dashboard(conn, actor, _settings().workspace.overdue_days),
                   queue=sites.review_queue(conn, actor))


@bp.get("/lieux")
@login_required
def site_list():
    query = _search()
    listed = _first(lambda limit: sites.sites(read_db(), page_actor(), query, limit), SITES_SHOWN)
    return _render("sites.html", listed=listed, q=query or "")


def _site_form(site: dict | None, values: dict, status: int = 200, error: MapserviceError | None = None):
    return _render("site_form.html", status, site=site, values=values, error=error)


@bp.route("/lieux/nouveau", methods=["GET", "POST"])
@login_required
def new_site():
    if request.method == "GET":
        return _site_form(None, {"commune_code": request.args.get("commune", "")})
    form = request.form.to_dict()
    try:
        saved = sites.create_site(write_db(), page_actor(), inputs.site_input(form),
                                  geocoder_from(_settings().geocoder))
    except InvalidParameter as exc:
        return _site_form(None, form, 400, exc)
    for warning in saved.warnings:
        flash(warning)
    flash("Lieu créé (brouillon).")
    return redirect(url_for("workspace.edit_site", site_id=saved.id))


@bp.route("/lieux/<int:site_id>", methods=["GET", "POST"])
@login_required
def edit_site(site_id: int):
    actor = page_actor()
    if request.method == "GET":
        found = sites.site(read_db(), actor, site_id)
        return _site_form(found, found)
    form = request.form.to_dict()
    conn = write_db()
    try:
        started = inputs.version(form)
        saved = sites.update_site(conn, actor, site_id, started, inputs.site_input(
            {k: v for k, v in form.items() if k not in ("version", "csrf_token")}),
            geocoder_from(_settings().geocoder))
    except (InvalidParameter, StaleVersion) as exc:
        current = sites.site(conn, actor, site_id)
        if isinstance(exc, StaleVersion):
            form["version"] = current["version"]  # saving again overwrites, knowingly
        return _site_form(current, form, exc.status, exc)
    for warning in saved.warnings:
        flash(warning)
    flash("Lieu enregistré.")
    return redirect(url_for("workspace.edit_site", site_id=site_id))


@bp.post("/lieux/<int:site_id>/statut")
@login_required
def site_status(site_id: int):
    sites.set_site_status(write_db(), page_actor(), site_id, inputs.version(request.form),
                          inputs.status(request.form))
    flash(f"Statut : {CATALOGUE_STATUS_LABELS[request.form['status']]}.")
    return redirect(url_for("workspace.edit_site", site_id=site_id))


@bp.post("/lieux/<int:site_id>/toujours-exact")
@login_required
def stamp_site(site_id: int):
    freshness.stamp(write_db(), page_actor(), [site_id])
    flash("Marqué « toujours exact » aujourd'hui, avec ses solutions.")
    return redirect(request.form.get("next") == "a-verifier" and url_for("workspace.overdue")
                    or url_for("workspace.edit_site", site_id=site_id))


def _solution_form(solution: dict | None, site: dict, values: dict, status: int = 200, error=None):
    return _render("solution_form.html", status, solution=solution, site=site, values=values, error=error)


SOLUTION_FORM_EXTRA = ("version", "csrf_token", "status")


@bp.route("/lieux/<int:site_id>/solutions/nouvelle", methods=["GET", "POST"])
@login_required
def new_solution(site_id: int):
    actor = page_actor()
    site = sites.site(read_db(), actor, site_id)
    if request.method == "GET":
        return _solution_form(None, site, {})
    form = request.form.to_dict()
    try:
        saved = solutions.create_solution(write_db(), actor, site_id, inputs.solution_input(
            {k: v for k, v in form.items() if k not in SOLUTION_FORM_EXTRA}))
    except InvalidParameter as exc:
        return _solution_form(None, site, form, 400, exc)
    flash("Solution créée (brouillon).")
    return redirect(url_for("workspace.edit_solution", solution_id=saved.id))


@bp.route("/solutions/<int:solution_id>", methods=["GET", "POST"])
@login_required
def edit_solution(solution_id: int):
    actor = page_actor()
    conn = read_db() if request.method == "GET" else write_db()
    found = solutions.solution(conn, actor, solution_id)
    site = sites.site_row(conn, found["site_id"])
    if request.method == "GET":
        return _solution_form(found, site, found)
    form = request.form.to_dict()
    try:
        started = inputs.version(form)
        status = inputs.status(form) if form.get("status") else None
        solutions.update_solution(conn, actor, solution_id, started, inputs.solution_input(
            {k: v for k, v in form.items() if k not in SOLUTION_FORM_EXTRA}), status)
    except (InvalidParameter, StaleVersion) as exc:
        current = solutions.solution_row(conn, solution_id)
        if isinstance(exc, StaleVersion):
            form["version"] = current["version"]
        return _solution_form(current, site, form, exc.status, exc)
    flash("Solution enregistrée.")
    return redirect(url_for("workspace.edit_solution", solution_id=solution_id))


@bp.route("/places", methods=["GET", "POST"])
@login_required
def places():
    actor = page_actor()
    query = _search()
    if request.method == "GET":
        return _render("places.html", q=query or "", listed=_first(
            lambda limit: solutions.places_screen(read_db(), actor, query, limit), PLACES_SHOWN))
    conn = write_db()
    try:
        changes = []
        for key, value in request.form.items():
            if key.startswith("places_"):
                solution_id = int(key.removeprefix("places_"))
                started = int(request.form.get(f"version_{solution_id}", "0"))
                changes.append((solution_id, started, inputs.vacant_places(request.form, key)))
        changed = solutions.save_places(conn, actor, changes)
    except (InvalidParameter, StaleVersion) as exc:
        conn.rollback()
        return _render("places.html", exc.status, q=query or "", error=exc, submitted=request.form, listed=_first(
            lambda limit: solutions.places_screen(conn, actor, query, limit), PLACES_SHOWN))
    except ValueError:
        raise InvalidParameter("Formulaire des places illisible : rechargez la page.", parameter="places") from None
    flash(f"Places enregistrées ({changed} solution{'s' if changed > 1 else ''} modifiée{'s' if changed > 1 else ''}).")
    return redirect(url_for("workspace.places", q=query))


@bp.route("/a-verifier", methods=["GET", "POST"])
@login_required
def overdue():
    actor = page_actor()
    if request.method == "POST":
        ids = [int(v) for v in request.form.getlist("site") if v.isdigit()]
        count = freshness.stamp(write_db(), actor, ids)
        flash(f"{count} lieu{'x' if count > 1 else ''} marqué{'s' if count > 1 else ''} « toujours exact ».")
        return redirect(url_for("workspace.overdue"))
    days = _settings().workspace.overdue_days
    return _render("overdue.html", days=days,
                   listed=_first(lambda limit: freshness.overdue(read_db(), actor, days, limit), OVERDUE_SHOWN))


@bp.get("/historique/<entity>/<int:record_id>")
@login_required
def record_history(entity: str, record_id: int):
    if entity not in HISTORY_ENTITIES:
        raise NotFound(f"Pas d'historique pour « {entity} ».", parameter="entity")
    actor = page_actor()
    conn = read_db()
    # The same check as to open the record.
    if entity == "site":
        sites.site(conn, actor, record_id)
    elif entity == "solution":
        solutions.solution(conn, actor, record_id)
    elif entity == "account":
        permissions.authorize(conn, actor, Action.MANAGE_ACCOUNT, Ref("account", record_id))
    elif entity == "psad_platform":
        territories.platform(conn, actor, record_id)
    else:
        permissions.authorize(conn, actor, Action.HANDLE_REPORT, Ref("report", record_id))
    return _render("history.html", entity=entity, record_id=record_id,
                   changes=history.changes(conn, entity, record_id))


@bp.post("/historique/<int:change_id>/retablir")
@login_required
def revert(change_id: int):
    saved = revert_core.revert(write_db(), page_actor(), change_id, geocoder_from(_settings().geocoder))
    change = history.change(write_db(), change_id)
    flash(f"Version du {change['at']:%d/%m/%Y %H:%M} rétablie.")
    endpoint = "workspace.edit_site" if change["entity"] == "site" else "workspace.edit_solution"
    return redirect(url_for(endpoint, **{"site_id" if change["entity"] == "site" else "solution_id": saved.id}))


@bp.get("/signalements")
@login_required
def reports():
    status = request.args.get("statut") or None
    if status is not None and status not in ERROR_REPORT_STATUSES:
        status = None
    return _render("inbox.html", status=status,
                   listed=_first(lambda limit: inbox.reports(read_db(), page_actor(), status, limit), REPORTS_SHOWN))


@bp.post("/signalements/<int:report_id>")
@login_required
def report_status(report_id: int):
    inbox.set_status(write_db(), page_actor(), report_id, request.form.get("status", ""))
    flash("Signalement mis à jour.")
    return redirect(url_for("workspace.reports"))


# -- Accounts, tokens, territories --------------------------------------------------------------------

@bp.get("/comptes")
@login_required
def accounts():
    return _render("accounts.html", accounts=store.visible_accounts(read_db(), page_actor()))


@bp.route("/comptes/inviter", methods=["GET", "POST"])
@login_required
def invite():
    if request.method == "GET":
        return _render("invite.html", values={})
    form = request.form.to_dict()
    try:
        spec = AccountSpec(email=form.get("email", ""), role=form.get("role", ""), scopes=scope_values(form),
                           name=form.get("name"))
        _, link = invite_account(write_db(), page_actor(), spec, _settings())
    except InvalidParameter as exc:
        return _render("invite.html", 400, values=form, error=exc)
    if link is None:
        flash(f"Invitation envoyée à {spec.email.strip().lower()}.")
        return redirect(url_for("workspace.accounts"))
    # No SMTP server configured: the administrator passes the link on.
    return _render("invite.html", values={}, link=link, invited=spec.email)


def _account_values(account: dict) -> dict:
    scopes = account["scope_values"]
    return {"name": account["name"] or "", "role": account["role"], "active": account["active"],
            "version": account["version"],
            "academies": " ".join(s.academie for s in scopes if s.academie),
            "departements": " ".join(s.departement for s in scopes if s.departement),
            "platforms": " ".join(str(s.platform) for s in scopes if s.platform is not None),
            "sites": " ".join(str(s.site) for s in scopes if s.site is not None)}


@bp.route("/comptes/<int:account_id>", methods=["GET", "POST"])
@login_required
def edit_account(account_id: int):
    """Role, territory, name, and whether the account may still log in (off: its sessions end)."""
    actor = page_actor()
    conn = read_db() if request.method == "GET" else write_db()
    permissions.authorize(conn, actor, Action.MANAGE_ACCOUNT, Ref("account", account_id))
    account = store.account(conn, account_id)
    if request.method == "GET":
        return _render("account_form.html", account=account, values=_account_values(account))
    form = request.form.to_dict()
    try:
        spec = AccountSpec(email=account["email"], role=form.get("role", ""), scopes=scope_values(form),
                           name=form.get("name"))
        store.update_account(conn, actor, account_id, inputs.version(form), spec, active=form.get("active") == "on")
    except (InvalidParameter, StaleVersion) as exc:
        return _render("account_form.html", exc.status, account=account, values={**form, "active": "active" in form},
                       error=exc)
    flash("Compte enregistré.")
    return redirect(url_for("workspace.edit_account", account_id=account_id))


@bp.post("/comptes/<int:account_id>/invitation")
@login_required
def reinvite(account_id: int):
    ws = _settings().workspace
    email, secret = store.reinvite(write_db(), page_actor(), account_id, dt.timedelta(days=ws.invitation_days))
    link = _public_url("workspace.activate", jeton=secret)
    if mail.configured(_settings().mail):
        mail.invitation(_settings().mail, email, link, ws.invitation_days)
        flash(f"Nouvelle invitation envoyée à {email}.")
        return redirect(url_for("workspace.edit_account", account_id=account_id))
    account = store.account(write_db(), account_id)
    return _render("account_form.html", account=account, values=_account_values(account), link=link)


@bp.route("/jetons", methods=["GET", "POST"])
@login_required
def tokens():
    actor = page_actor()
    secret = None
    if request.method == "POST":
        conn = write_db()
        if request.form.get("revoke"):
            login.revoke_api_token(conn, actor, int(request.form["revoke"]))
            flash("Jeton révoqué.")
        else:
            _, secret = login.create_api_token(conn, actor, request.form.get("label", ""))
        return _render("tokens.html", tokens=login.api_tokens(conn, actor), secret=secret)
    return _render("tokens.html", tokens=login.api_tokens(read_db(), actor))


@bp.get("/territoires")
@login_required
def territory_list():
    return _render("territories.html", platforms=territories.platforms(read_db(), page_actor()))


@bp.route("/territoires/<int:platform_id>", methods=["GET", "POST"])
@login_required
def edit_territory(platform_id: int):
    actor = page_actor()
    if request.method == "GET":
        found = territories.platform(read_db(), actor, platform_id)
        return _render("territory_form.html", platform=found, values={**found, "communes": " ".join(found["communes"])})
    form = request.form.to_dict()
    conn = write_db()
    try:
        communes = form.get("communes")  # absent: the perimeter stays as it is
        upload = request.files.get("communes_csv")
        if upload and upload.filename:
            communes = upload.read(1_000_000).decode("utf-8-sig", "replace")
        data = territories.PlatformInput(
            name=form.get("name", "").strip() or _missing("name"),
            **{k: form.get(k, "").strip() or None for k in (
                "contact_name", "phone", "email", "website", "address", "network_name", "network_contact_name",
                "network_phone", "network_email")},
            communes=None if communes is None else territories.commune_codes(communes))
        territories.update_platform(conn, actor, platform_id, inputs.version(form), data)
    except (InvalidParameter, StaleVersion) as exc:
        return _render("territory_form.html", exc.status, platform=territories.platform(conn, actor, platform_id),
                       values=form, error=exc)
    flash("Territoire enregistré : « qui couvre mon secteur » le montre déjà.")
    return redirect(url_for("workspace.edit_territory", platform_id=platform_id))


def _missing(field: str):
    raise InvalidParameter(f"Le champ '{field}' est obligatoire.", parameter=field)
