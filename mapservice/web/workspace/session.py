"""Who is behind a request: a session (Flask-Login; the account's session generation in the session id, so
"log out everywhere" ends them all) or, for the API, a bearer token. Both give the same core Actor."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import UserMixin, current_user

from ...accounts import login
from ...accounts.login import LoginLimits
from ...accounts.values import Actor
from ...errors import Unauthorized
from ..connection import read_db


# The only paths that read or write the session cookie: the workspace's pages, the report pages and the report API
# (which a signed-in page calls).
SESSION_PATHS = ("/equipes/", "/espace/", "/api/v1/reports")


class PublicSession(SecureCookieSession):
    """The session of a public request: always empty, never saved."""


class WorkspaceSessionInterface(SecureCookieSessionInterface):
    """Public responses (the map, the API, tiles) must not vary on the session cookie, or no shared cache keeps
    them; Flask adds `Vary: Cookie` as soon as anything (Flask-Login's after_request does) looks at the session.
    So outside SESSION_PATHS the session is a detached empty one and the cookie is neither read nor written."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(SESSION_PATHS):
            return super().open_session(app, request)
        return PublicSession()

    def save_session(self, app: Flask, session: SecureCookieSession, response: Response) -> None:
        if not isinstance(session, PublicSession):
            super().save_session(app, session, response)


class SessionUser(UserMixin):
    def __init__(self, actor: Actor, generation: int):
        self.actor = actor
        self.generation = generation

    def get_id(self) -> str:
        return f"{self.actor.account_id}:{self.generation}"


def address() -> str | None:
    return request.remote_addr


def load_user(session_id: str) -> SessionUser | None:
    try:
        account_id, generation = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    actor = login.session_actor(read_db(), account_id, generation, address())
    return SessionUser(actor, generation) if actor else None


def page_actor() -> Actor:
    return current_user.actor


def api_actor() -> Actor:
    """The actor of an API call: `Authorization: Bearer <token>`."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Jeton d'API manquant : envoyez l'en-tête « Authorization: Bearer <jeton> » (jetons créés "
                           "dans l'espace des équipes, page « Jetons d'API »).")
    actor = login.token_actor(read_db(), secret.strip(), address())
    if actor is None:
        raise Unauthorized("Jeton d'API inconnu ou révoqué.")
    return actor


def limits() -> LoginLimits:
    ws = current_app.config["SETTINGS"].workspace
    return LoginLimits(per_account=ws.login_failures_per_account, per_address=ws.login_failures_per_address,
                       window=dt.timedelta(minutes=ws.login_window_minutes))


def local_path(value: str | None) -> str | None:
    """Where to go back after signing in (Flask-Login's `next`): a path of this site only, never another host
    (`//host`, `/\\host`, `https://…` are dropped: an open redirect would lend our name to a phishing page)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(ch) < 32 for ch in value):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None
