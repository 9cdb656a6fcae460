"""The teams' workspace: French server-rendered pages under /equipes/ (plain HTML forms, working without
JavaScript) and the same operations as a JSON API under /api/v1/equipes/ for integrators. Both call the same
core functions (mapservice.curation, mapservice.accounts), which check the actor's territory themselves."""
from __future__ import annotations

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from . import api, imports, pages, session

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    secure = settings.workspace.secure_cookies
    if secure is None:
        secure = settings.security.environment == "production"
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_NAME="mapservice_session",
        PERMANENT_SESSION_LIFETIME=int(settings.workspace.session_hours * 3600),
        # Forms are checked where they are (the workspace's blueprint); the API takes tokens, not cookies.
        WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=int(settings.workspace.session_hours * 3600),
        WTF_CSRF_SSL_STRICT=False,
    )
    app.session_interface = session.WorkspaceSessionInterface()
    csrf.init_app(app)
    manager = LoginManager(app)
    manager.login_view = "workspace.login"
    manager.login_message = "Connectez-vous pour accéder à l'espace des équipes."
    manager.session_protection = "basic"
    manager.user_loader(session.load_user)
    app.register_blueprint(pages.bp, url_prefix="/equipes")
    app.register_blueprint(imports.bp, url_prefix="/equipes/imports")
    app.register_blueprint(api.bp, url_prefix="/api/v1/equipes")
