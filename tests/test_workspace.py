"""The workspace's pages and its API on the same core: log in, edit, stale saves, revert, vacant places, inbox,
and the security matrix (every role x every write x inside/outside its territory, pages and API)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from mapservice.db import make_engine

from .conftest import dispose_app, make_test_app, throwaway_database
from .workspace_fixtures import PASSWORD, team

EMAILS = {"national": "nationale@exemple.invalid", "academie": "academie.rennes@exemple.invalid",
          "curator": "referent.35@exemple.invalid", "platform_curator": "plateforme.35@exemple.invalid",
          "partner": "partenaire.35@exemple.invalid"}


@pytest.fixture(scope="module")
def ws(server, template):
    with throwaway_database(server, "mapservice_ws", template=template) as url:
        engine = make_engine(url)
        t = team(engine)
        app = make_test_app(url)
        yield app, engine, t
        dispose_app(app)
        engine.dispose()


def csrf(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def logged_in(app, who: str):
    client = app.test_client()
    page = client.get("/equipes/connexion")
    response = client.post("/equipes/connexion", data={"email": EMAILS[who], "password": PASSWORD,
                                                        "csrf_token": csrf(page.data)})
    assert response.status_code == 302, response.data[:500]
    return client


def form_of(client, path: str) -> dict:
    """The form's current values, as the browser would post them back."""
    page = client.get(path)
    assert page.status_code == 200, page.data[:300]
    html = page.data.decode()
    values = dict(re.findall(r'<input id="f-(\w+)" name="\w+" type="[a-z]+" value="([^"]*)"', html))
    values.update(re.findall(r'<textarea id="f-(\w+)" name="\w+" rows="\d+">([^<]*)</textarea>', html))
    for name, options in re.findall(r'<select id="f-(\w+)" name="\w+">(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        values[name] = chosen.group(1) if chosen else ""
    values["version"] = re.search(r'name="version" value="(\d+)"', html).group(1)
    values["csrf_token"] = csrf(page.data)
    return values


def test_the_login_page_and_workspace_pages_render_for_a_curator(ws):
    app, engine, t = ws
    client = logged_in(app, "curator")
    for path in ("/equipes/", "/equipes/lieux", "/equipes/places", "/equipes/a-verifier", "/equipes/signalements",
                 f"/equipes/lieux/{t['site_35']}", "/equipes/lieux/nouveau", "/equipes/jetons",
                 f"/equipes/historique/site/{t['site_35']}"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.data[:300])
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert app.test_client().get("/equipes/").status_code == 302  # not logged in: to the login page
