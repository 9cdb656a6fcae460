"""Security is part of done: every role x every write operation x inside/outside its territory, through the
pages (form posts with their CSRF token) and through the API (bearer tokens). Outside its territory no write
succeeds: each is a 403 with a clear message, logged in the audit log, and the data is unchanged. Ids guessed
for records of another territory (IDOR) are refused the same way."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from mapservice.accounts import login, store
from mapservice.curation import sites as site_core
from mapservice.curation.inputs import site_input
from mapservice.db import make_engine, transaction

from .conftest import dispose_app, make_test_app, throwaway_database
from .test_workspace import csrf, logged_in
from .workspace_fixtures import ROOT_ACTOR, platform_of, team

ROLES = ("national", "academie", "curator", "platform_curator", "partner")
# What each role may do inside its territory (a partner: on its granted site), written out here rather than
# derived from the code under test.
ALLOWED_INSIDE = {
    "national": {"edit_site", "status", "stamp", "create_solution", "edit_solution", "places", "revert", "report",
                 "create_site", "territory", "invite"},
    "academie": {"edit_site", "status", "stamp", "create_solution", "edit_solution", "places", "revert", "report",
                 "create_site", "territory", "invite"},
    "curator": {"edit_site", "status", "stamp", "create_solution", "edit_solution", "places", "revert", "report",
                "create_site"},
    "platform_curator": {"edit_site", "status", "stamp", "create_solution", "edit_solution", "places", "revert",
                         "report", "create_site"},
    "partner": {"edit_site", "stamp", "create_solution", "edit_solution", "places", "revert", "create_site"},
}
OPERATIONS = sorted(ALLOWED_INSIDE["national"])


@pytest.fixture(scope="module")
def world(server, template):
    with throwaway_database(server, "mapservice_sec", template=template) as url:
        engine = make_engine(url)
        t = team(engine)
        with transaction(engine) as conn:
            for side, site_id in (("35", t["site_35"]), ("69", t["site_69"])):
                t[f"solution_{side}"] = conn.scalar(text(
                    "SELECT id FROM solution WHERE site_id = :s AND status = 'published' ORDER BY id LIMIT 1"),
                    {"s": site_id})
                t[f"report_{side}"] = conn.scalar(text(
                    "INSERT INTO error_report (solution_id, reason, message) VALUES (:s, 'places', 'complet') "
                    "RETURNING id"), {"s": t[f"solution_{side}"]})
                row = site_core.site_row(conn, site_id)
                saved = site_core.update_site(conn, ROOT_ACTOR, site_id, row["version"], site_input(
                    {**{k: row[k] for k in ("name", "kind", "commune_code", "address", "postcode", "phone")},
                     "opening_hours": "9 h - 17 h"}))
                t[f"change_{side}"] = conn.scalar(text(
                    "SELECT max(id) FROM change_log WHERE entity = 'site' AND entity_id = :s"), {"s": site_id})
                assert saved.version == row["version"] + 1
            t["platform_69"] = platform_of(conn, "69")
            tokens = {}
            for who in ROLES:
                actor = store.load_actor(conn, t[who])
                tokens[who] = login.create_api_token(conn, actor, "tests")[1]
        app = make_test_app(url)
        yield app, engine, t, tokens
        dispose_app(app)
        engine.dispose()


def versions(conn, t, side):
    return {
        "site": conn.scalar(text("SELECT version FROM site WHERE id = :i"), {"i": t[f"site_{side}"]}),
        "solution": conn.scalar(text("SELECT version FROM solution WHERE id = :i"), {"i": t[f"solution_{side}"]}),
        "platform": conn.scalar(text("SELECT version FROM psad_platform WHERE id = :i"),
                                {"i": t[f"platform_{side}"]}),
    }


def site_fields(conn, site_id) -> dict:
    row = site_core.site_row(conn, site_id)
    return {k: row[k] for k in ("name", "kind", "commune_code", "address", "postcode") if row[k] is not None}


def solution_fields(conn, solution_id) -> dict:
    row = conn.execute(text("SELECT type, title, service_civique_formula, voie FROM solution WHERE id = :i"),
                       {"i": solution_id}).mappings().one()
    return {k: v for k, v in row.items() if v is not None}


COMMUNE = {"35": "35238", "69": "69123"}  # Rennes, Lyon


def api_calls(conn, t, side, n, who):
    """(method, path, JSON body) of every write operation on the `side` (35 or 69) records."""
    v = versions(conn, t, side)
    site, solution = t[f"site_{side}"], t[f"solution_{side}"]
    return {
        "edit_site": ("PUT", f"/lieux/{site}", {**site_fields(conn, site), "version": v["site"]}),
        "status": ("POST", f"/lieux/{site}/statut", {"version": v["site"], "status": "published"}),
        "stamp": ("POST", f"/lieux/{site}/toujours-exact", {}),
        "create_solution": ("POST", f"/lieux/{site}/solutions", {"type": "mission_locale", "title": f"Accueil {n}"}),
        "edit_solution": ("PUT", f"/solutions/{solution}", {**solution_fields(conn, solution), "version": v["solution"]}),
        "places": ("PUT", "/places", {"solutions": [{"id": solution, "version": v["solution"], "vacant_places": n}]}),
        "revert": ("POST", f"/historique/{t[f'change_{side}']}/retablir", {}),
        "report": ("POST", f"/signalements/{t[f'report_{side}']}/statut", {"status": "in_progress"}),
        "create_site": ("POST", "/lieux", {"name": f"Lieu proposé {n}", "kind": "mission_locale",
                                           "commune_code": COMMUNE[side]}),
        "territory": ("PUT", f"/plateformes/{t[f'platform_{side}']}",
                      {"name": f"Plateforme {side}", "version": v["platform"]}),
        "invite": ("POST", "/comptes", {"email": f"invite.{who}.{side}.{n}@exemple.invalid", "role": "curator",
                                        "scopes": {"departements": [side]}}),
    }


def form_calls(conn, t, side, n, token, who="x"):
    """(path, form) of every write operation, as the workspace's pages post them."""
    v = versions(conn, t, side)
    site, solution = t[f"site_{side}"], t[f"solution_{side}"]
    base = {"csrf_token": token}
    return {
        "edit_site": (f"/equipes/lieux/{site}", {**base, **site_fields(conn, site), "version": v["site"]}),
        "status": (f"/equipes/lieux/{site}/statut", {**base, "version": v["site"], "status": "published"}),
        "stamp": (f"/equipes/lieux/{site}/toujours-exact", base),
        "create_solution": (f"/equipes/lieux/{site}/solutions/nouvelle",
                            {**base, "type": "mission_locale", "title": f"Accueil {n}"}),
        "edit_solution": (f"/equipes/solutions/{solution}",
                          {**base, **solution_fields(conn, solution), "version": v["solution"]}),
        "places": ("/equipes/places", {**base, f"places_{solution}": n, f"version_{solution}": v["solution"]}),
        "revert": (f"/equipes/historique/{t[f'change_{side}']}/retablir", base),
        "report": (f"/equipes/signalements/{t[f'report_{side}']}", {**base, "status": "in_progress"}),
        "create_site": ("/equipes/lieux/nouveau", {**base, "name": f"Lieu proposé {n}", "kind": "mission_locale",
                                                   "commune_code": COMMUNE[side]}),
        "territory": (f"/equipes/territoires/{t[f'platform_{side}']}",
                      {**base, "name": f"Plateforme {side}", "version": v["platform"]}),
        "invite": ("/equipes/comptes/inviter", {**base, "email": f"page.{who}.{side}.{n}@exemple.invalid",
                                                "role": "curator", "departements": side}),
    }


def snapshot_69(conn, t) -> dict:
    """Everything a write on the Rhône side could change."""
    return {
        "site": conn.execute(text("SELECT * FROM site WHERE id = :i"), {"i": t["site_69"]}).mappings().one(),
        "solutions": conn.execute(text("SELECT id, version, vacant_places FROM solution WHERE site_id = :i ORDER BY id"),
                                  {"i": t["site_69"]}).all(),
        "sites_69": conn.scalar(text("SELECT count(*) FROM site WHERE commune_code LIKE '69%'")),
        "report": conn.scalar(text("SELECT status FROM error_report WHERE id = :i"), {"i": t["report_69"]}),
        "platform": conn.execute(text("SELECT * FROM psad_platform WHERE id = :i"),
                                 {"i": t["platform_69"]}).mappings().one(),
        "accounts": conn.scalar(text("SELECT count(*) FROM account")),
    }


def forbidden_logged(conn) -> int:
    return conn.scalar(text("SELECT count(*) FROM audit_event WHERE event = 'forbidden'"))


@pytest.mark.parametrize("who", ROLES)
def test_api_writes_succeed_only_inside_the_territory(world, who):
    app, engine, t, tokens = world
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens[who]}"}
    outcomes = {}
    for side in ("35", "69"):
        for op in OPERATIONS:
            with engine.connect() as conn:
                method, path, body = api_calls(conn, t, side, len(outcomes) + 1, who)[op]
                before, refusals = snapshot_69(conn, t), forbidden_logged(conn)
            response = client.open("/api/v1/equipes" + path, method=method, json=body, headers=headers)
            outcomes[side, op] = response.status_code
            allowed = op in ALLOWED_INSIDE[who] if side == "35" else who == "national"
            if allowed:
                assert response.status_code in (200, 201), (who, side, op, response.json)
            else:
                assert response.status_code == 403, (who, side, op, response.status_code, response.json)
                assert response.mimetype == "application/problem+json"
                assert "Votre compte ne permet pas" in response.json["detail"]
                with engine.connect() as conn:
                    assert forbidden_logged(conn) == refusals + 1, (who, side, op)
                    if side == "69":
                        assert snapshot_69(conn, t) == before, (who, op)
    if who != "national":
        assert all(outcomes["69", op] == 403 for op in OPERATIONS)


@pytest.mark.parametrize("who", ROLES)
def test_form_posts_succeed_only_inside_the_territory(world, who):
    app, engine, t, _ = world
    client = logged_in(app, who)
    token = csrf(client.get("/equipes/").data)
    for side in ("35", "69"):
        for n, op in enumerate(OPERATIONS):
            with engine.connect() as conn:
                path, form = form_calls(conn, t, side, 1000 + n, token, who)[op]
                before, refusals = snapshot_69(conn, t), forbidden_logged(conn)
            response = client.post(path, data=form)
            allowed = op in ALLOWED_INSIDE[who] if side == "35" else who == "national"
            if allowed:
                assert response.status_code in (200, 302), (who, side, op, response.data[:400])
                assert b"Votre compte ne permet pas" not in response.data
            else:
                assert response.status_code == 403, (who, side, op, response.status_code)
                assert "Votre compte ne permet pas" in response.data.decode()
                with engine.connect() as conn:
                    assert forbidden_logged(conn) == refusals + 1, (who, side, op)
                    if side == "69":
                        assert snapshot_69(conn, t) == before, (who, op)


def test_an_ille_et_vilaine_curator_cannot_open_a_rhone_site_page_history_or_api(world):
    app, engine, t, tokens = world
    client = logged_in(app, "curator")
    for path in (f"/equipes/lieux/{t['site_69']}", f"/equipes/solutions/{t['solution_69']}",
                 f"/equipes/historique/site/{t['site_69']}", f"/equipes/lieux/{t['site_69']}/solutions/nouvelle",
                 f"/equipes/territoires/{t['platform_69']}"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "hors de votre territoire" in response.data.decode()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['curator']}"}
    assert api.get(f"/api/v1/equipes/lieux/{t['site_69']}", headers=headers).status_code == 403
    assert api.get(f"/api/v1/equipes/solutions/{t['solution_69']}", headers=headers).status_code == 403
    # Lists never show the other territory's records.
    listed = api.get("/api/v1/equipes/lieux?q=a", headers=headers).json["sites"]
    assert listed and all(s["commune_code"].startswith("35") for s in listed)
    inbox = api.get("/api/v1/equipes/signalements", headers=headers).json["reports"]
    assert {r["id"] for r in inbox} >= {t["report_35"]} and t["report_69"] not in {r["id"] for r in inbox}


def test_a_form_post_without_its_csrf_token_is_refused(world):
    app, engine, t, _ = world
    client = logged_in(app, "curator")
    with engine.connect() as conn:
        path, form = form_calls(conn, t, "35", 1, "")["stamp"]
    response = client.post(path, data={})
    assert response.status_code == 400
    assert b"CSRF" in response.data


def test_the_api_wants_a_valid_token(world):
    app, engine, t, tokens = world
    client = app.test_client()
    assert client.get("/api/v1/equipes/lieux").status_code == 401
    assert client.get("/api/v1/equipes/lieux", headers={"Authorization": "Bearer faux"}).status_code == 401
    granted = client.get("/api/v1/equipes/moi", headers={"Authorization": f"Bearer {tokens['partner']}"}).json["sites"]
    assert t["site_35"] in granted
    # Besides its site, the partner holds only the sites it proposed, which wait as drafts for review.
    with engine.connect() as conn:
        proposals = conn.execute(text("SELECT status, review_requested_at IS NOT NULL FROM site WHERE id = ANY(:ids)"),
                                 {"ids": [i for i in granted if i != t["site_35"]]}).all()
    assert set(proposals) <= {("draft", True)}


def test_the_api_answers_match_the_openapi_document(world):
    import json

    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from openapi_spec_validator import validate
    from werkzeug.test import EnvironBuilder

    app, engine, t, tokens = world
    client = app.test_client()
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    openapi = OpenAPI.from_dict(spec, config=Config(
        extra_media_type_deserializers={"application/problem+json": json.loads}))
    headers = {"Authorization": f"Bearer {tokens['curator']}"}
    site = client.get(f"/api/v1/equipes/lieux/{t['site_35']}", headers=headers)
    body = {k: site.json[k] for k in ("name", "kind", "commune_code", "address", "postcode") if site.json[k]}
    put = {"path": f"/api/v1/equipes/lieux/{t['site_35']}", "method": "PUT", "headers": headers,
           "json": {**body, "version": site.json["version"]}}
    responses = [
        client.get("/api/v1/equipes/moi", headers=headers), site, client.open(**put), client.open(**put),
        client.get(f"/api/v1/equipes/lieux/{t['site_69']}", headers=headers),
        client.get("/api/v1/equipes/lieux"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 409, 403, 401]
    for response in responses:
        # The test client consumed the request's body: the PUTs are described again for the validator.
        request = EnvironBuilder(**put).get_request() if response.request.method == "PUT" else response.request
        openapi.validate_response(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
    assert 'id="workspaceSavePlaces"' in client.get("/api/v1/docs").get_data(as_text=True)
