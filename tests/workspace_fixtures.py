"""Shared helpers for the workspace's tests: accounts of every role on the demo catalogue, in a database of the
module's own (the tests write)."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import text

from mapservice.accounts import store
from mapservice.accounts.store import AccountSpec
from mapservice.accounts.values import NATIONAL_ADMIN, Actor, Scope
from mapservice.db import transaction

PASSWORD = "un mot de passe solide"
ROOT_ACTOR = Actor(account_id=None, email="tests", role=NATIONAL_ADMIN)
TEAM_EMAILS = {"national": "nationale@exemple.invalid", "academie": "academie.rennes@exemple.invalid",
               "curator": "referent.35@exemple.invalid", "platform_curator": "plateforme.35@exemple.invalid",
               "partner": "partenaire.35@exemple.invalid"}


def first_site(conn, departement: str) -> int:
    """A published site of the département that has a published solution."""
    return conn.scalar(text("""
        SELECT site.id FROM site JOIN commune c ON c.code = site.commune_code
        WHERE c.departement_code = :d AND site.status = 'published'
          AND EXISTS (SELECT 1 FROM solution s WHERE s.site_id = site.id AND s.status = 'published')
        ORDER BY site.is_example DESC, site.id LIMIT 1"""), {"d": departement})


def platform_of(conn, departement: str) -> int:
    return conn.scalar(text("SELECT id FROM psad_platform WHERE departement_code = :d ORDER BY id LIMIT 1"),
                       {"d": departement})


def make_account(engine, email: str, role: str, scopes=(), password: str = PASSWORD) -> int:
    """An account with its password already set (as through its invitation link)."""
    with transaction(engine) as conn:
        account_id, secret = store.invite(conn, ROOT_ACTOR, AccountSpec(email, role, tuple(scopes)),
                                          dt.timedelta(days=1))
        store.set_password(conn, secret, "invitation", password)
    return account_id


def team(engine) -> dict:
    """One account of every role: the Ille-et-Vilaine (35, académie de Rennes) side, and a Rhône (69) site."""
    with engine.connect() as conn:
        site_35, site_69 = first_site(conn, "35"), first_site(conn, "69")
        platform_35 = platform_of(conn, "35")
        rennes = conn.scalar(text("SELECT academie_code FROM departement WHERE code = '35'"))
    return {
        "site_35": site_35, "site_69": site_69, "platform_35": platform_35, "academie_35": rennes,
        "national": make_account(engine, TEAM_EMAILS["national"], "national_admin"),
        "academie": make_account(engine, TEAM_EMAILS["academie"], "academie_admin", [Scope(academie=rennes)]),
        "curator": make_account(engine, TEAM_EMAILS["curator"], "curator", [Scope(departement="35")]),
        "platform_curator": make_account(engine, TEAM_EMAILS["platform_curator"], "curator",
                                         [Scope(platform=platform_35)]),
        "partner": make_account(engine, TEAM_EMAILS["partner"], "partner", [Scope(site=site_35)]),
    }


def csrf(page: bytes | str) -> str:
    """A form page's CSRF token, as the browser posts it back."""
    html = page.decode() if isinstance(page, bytes) else page
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def csrf_token(client, path: str = "/equipes/connexion") -> str:
    """The CSRF token of the form at `path`, as the client's session has it."""
    return csrf(client.get(path).data)


def sign_in(client, email: str, next: str | None = None, password: str = PASSWORD):
    """The sign-in form, posted as a browser does: its page first, for the CSRF token."""
    form = {"csrf_token": csrf_token(client), "email": email, "password": password}
    return client.post("/equipes/connexion", data={**form, **({"next": next} if next else {})})


def logged_in(app, who: str):
    """A client signed in as the member `who` of `team()`."""
    client = app.test_client()
    response = sign_in(client, TEAM_EMAILS[who])
    assert response.status_code == 302, response.data[:500]
    return client
