"""/api/v1/equipes/: the workspace's operations as JSON for integrators, with an API token (Authorization:
Bearer). Same core functions, same checks as the pages; errors are problem+json (403 outside the territory,
409 with the changed fields on a stale version)."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from ... import history
from ...accounts.store import AccountSpec
from ...curation import freshness, inbox, inputs, revert as revert_core, sites, solutions, territories
from ...errors import InvalidParameter
from ...geocoding import geocoder_from
from ..connection import read_db, reads_primary, write_db
from .invitations import invite as invite_account, scope_values
from .session import api_actor

bp = Blueprint("workspace_api", __name__)
reads_primary(bp)
SITE_BODY = set(inputs.SITE_FIELDS) | {"version"}
SOLUTION_BODY = set(inputs.SOLUTION_FIELDS) | {"version", "status"}


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidParameter("Le corps de la requête doit être un objet JSON.", parameter="body")
    return body


def _geocoder():
    return geocoder_from(current_app.config["SETTINGS"].geocoder)


def _site_json(row: dict) -> dict:
    return {k: history.plain(v) for k, v in row.items()}


@bp.get("/moi")
def me():
    actor = api_actor()
    return {"email": actor.email, "role": actor.role, "academies": sorted(actor.academies),
            "departements": sorted(actor.departements), "platforms": sorted(actor.platforms),
            "sites": sorted(actor.sites)}


@bp.get("/lieux")
def site_list():
    return {"sites": [_site_json(r) for r in sites.sites(read_db(), api_actor(), request.args.get("q"))]}


@bp.post("/lieux")
def create_site():
    body = _body()
    inputs.known_fields(body, inputs.SITE_FIELDS)
    saved = sites.create_site(write_db(), api_actor(), inputs.site_input(body), _geocoder())
    return {"id": saved.id, "version": saved.version, "warnings": list(saved.warnings)}, 201


@bp.get("/lieux/<int:site_id>")
def get_site(site_id: int):
    found = sites.site(read_db(), api_actor(), site_id)
    return {**_site_json({k: v for k, v in found.items() if k != "solutions"}),
            "solutions": [_site_json(s) for s in found["solutions"]]}


@bp.put("/lieux/<int:site_id>")
def update_site(site_id: int):
    body = _body()
    inputs.known_fields(body, SITE_BODY)
    saved = sites.update_site(write_db(), api_actor(), site_id, inputs.version(body),
                              inputs.site_input({k: v for k, v in body.items() if k != "version"}), _geocoder())
    return {"id": saved.id, "version": saved.version, "warnings": list(saved.warnings)}


@bp.post("/lieux/<int:site_id>/statut")
def site_status(site_id: int):
    body = _body()
    inputs.known_fields(body, {"version", "status"})
    saved = sites.set_site_status(write_db(), api_actor(), site_id, inputs.version(body), inputs.status(body))
    return {"id": saved.id, "version": saved.version}


@bp.post("/lieux/<int:site_id>/toujours-exact")
def stamp_site(site_id: int):
    freshness.stamp(write_db(), api_actor(), [site_id])
    return {"id": site_id, "message": "Marqué « toujours exact »."}


@bp.post("/lieux/<int:site_id>/solutions")
def create_solution(site_id: int):
    body = _body()
    inputs.known_fields(body, set(inputs.SOLUTION_FIELDS) | {"status"})
    status = inputs.status(body) if body.get("status") else "draft"
    saved = solutions.create_solution(write_db(), api_actor(), site_id,
                                      inputs.solution_input({k: v for k, v in body.items() if k != "status"}), status)
    return {"id": saved.id, "version": saved.version}, 201


@bp.get("/solutions/<int:solution_id>")
def get_solution(solution_id: int):
    return _site_json(solutions.solution(read_db(), api_actor(), solution_id))


@bp.put("/solutions/<int:solution_id>")
def update_solution(solution_id: int):
    body = _body()
    inputs.known_fields(body, SOLUTION_BODY)
    status = inputs.status(body) if body.get("status") else None
    saved = solutions.update_solution(write_db(), api_actor(), solution_id, inputs.version(body), inputs.solution_input(
        {k: v for k, v in body.items() if k not in ("version", "status")}), status)
    return {"id": saved.id, "version": saved.version}


@bp.get("/places")
def places():
    return {"solutions": [_site_json(r) for r in solutions.places_screen(read_db(), api_actor())]}


@bp.put("/places")
def save_places():
    body = _body()
    lines = body.get("solutions")
    if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
        raise InvalidParameter("'solutions' doit être une liste d'objets {id, version, vacant_places}.",
                               parameter="solutions")
    changes = []
    for line in lines:
        inputs.known_fields(line, {"id", "version", "vacant_places"})
        if not isinstance(line.get("id"), int):
            raise InvalidParameter("Chaque ligne a un 'id' entier.", parameter="id")
        changes.append((line["id"], inputs.version(line), inputs.vacant_places(line, "vacant_places")))
    return {"changed": solutions.save_places(write_db(), api_actor(), changes)}


@bp.get("/a-verifier")
def overdue():
    days = current_app.config["SETTINGS"].workspace.overdue_days
    return {"days": days, "sites": [_site_json(r) for r in freshness.overdue(read_db(), api_actor(), days)]}


@bp.post("/toujours-exact")
def bulk_stamp():
    ids = _body().get("sites")
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise InvalidParameter("'sites' doit être une liste d'identifiants de lieux.", parameter="sites")
    return {"stamped": freshness.stamp(write_db(), api_actor(), ids)}


@bp.get("/historique/<entity>/<int:record_id>")
def record_history(entity: str, record_id: int):
    actor = api_actor()
    if entity == "site":
        sites.site(read_db(), actor, record_id)
    elif entity == "solution":
        solutions.solution(read_db(), actor, record_id)
    else:
        raise InvalidParameter("L'historique de l'API couvre les lieux (site) et les solutions (solution).",
                               parameter="entity")
    return {"changes": [_site_json(c) for c in history.changes(read_db(), entity, record_id)]}


@bp.post("/historique/<int:change_id>/retablir")
def revert(change_id: int):
    saved = revert_core.revert(write_db(), api_actor(), change_id, _geocoder())
    return {"id": saved.id, "version": saved.version}


@bp.get("/signalements")
def reports():
    return {"reports": [_site_json(r) for r in inbox.reports(read_db(), api_actor(), request.args.get("status"))]}


@bp.post("/signalements/<int:report_id>/statut")
def report_status(report_id: int):
    body = _body()
    inputs.known_fields(body, {"status"})
    inbox.set_status(write_db(), api_actor(), report_id, str(body.get("status", "")))
    return {"id": report_id, "status": body["status"]}


@bp.get("/plateformes/<int:platform_id>")
def get_platform(platform_id: int):
    return _site_json(territories.platform(read_db(), api_actor(), platform_id))


@bp.put("/plateformes/<int:platform_id>")
def update_platform(platform_id: int):
    body = _body()
    fields = set(territories.PlatformInput.__dataclass_fields__) | {"version"}
    inputs.known_fields(body, fields)
    communes = body.get("communes")
    if communes is not None and not (isinstance(communes, list) and all(isinstance(c, str) for c in communes)):
        raise InvalidParameter("'communes' doit être une liste de codes INSEE.", parameter="communes")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise InvalidParameter("Le champ 'name' est obligatoire.", parameter="name")
    data = territories.PlatformInput(**{k: v for k, v in body.items() if k not in ("version", "communes")},
                                     communes=None if communes is None else territories.commune_codes(" ".join(communes)))
    version = territories.update_platform(write_db(), api_actor(), platform_id, inputs.version(body), data)
    return {"id": platform_id, "version": version}


@bp.post("/comptes")
def invite():
    """Creates an account and its invitation: e-mailed when SMTP is configured, else returned as `link`."""
    body = _body()
    inputs.known_fields(body, {"email", "role", "name", "scopes"})
    scopes = body.get("scopes") or {}
    if not isinstance(scopes, dict):
        raise InvalidParameter("'scopes' est un objet : {\"academies\": [...], \"departements\": [...], "
                               "\"platforms\": [...], \"sites\": [...]}.", parameter="scopes")
    inputs.known_fields(scopes, {"academies", "departements", "platforms", "sites"})
    spec = AccountSpec(email=str(body.get("email", "")), role=str(body.get("role", "")), name=body.get("name"),
                       scopes=scope_values(scopes))
    settings = current_app.config["SETTINGS"]
    account_id, link = invite_account(write_db(), api_actor(), spec, settings)
    return {"id": account_id, **({"link": link} if link else {"message": "Invitation envoyée par e-mail."})}, 201
