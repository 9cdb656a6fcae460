"""Every error leaves as application/problem+json (RFC 9457) with a message that says what to fix; a browser that
opens a page of the site (not the API) gets the same message as a page in French, with a way back.

A database that does not answer is a 503 with Retry-After, logged as one line (the request's log line says
why), never a traceback per request."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, make_response, render_template, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from ..errors import MapserviceError
from .map_page import static_url

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5

# French titles and messages for the errors Flask, Werkzeug and the limiter raise themselves.
HTTP_ERRORS = {
    404: ("Introuvable", "Cette adresse n'existe pas. La documentation de l'API est sur /api/v1/docs."),
    405: ("Méthode non permise", "Cette adresse n'accepte pas cette méthode : voyez l'en-tête Allow."),
    406: ("Non acceptable", "Ce format de réponse n'est pas disponible."),
    413: ("Requête trop grosse", "Le corps de la requête est trop gros."),
    414: ("Adresse trop longue", "L'adresse (avec ses paramètres) est trop longue."),
    415: ("Type de contenu non pris en charge", "Envoyez du JSON ou un formulaire HTML."),
    429: ("Trop de requêtes", "Trop de requêtes en peu de temps : réessayez dans quelques instants."),
    431: ("En-têtes trop gros", "Les en-têtes de la requête sont trop gros."),
}
# Headers of Werkzeug's own error response worth keeping (Allow on a 405, Retry-After...).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


# What a page says instead of the API's messages that point to its documentation.
PAGE_DETAILS = {
    404: "Cette page n'existe pas, ou plus. Le lien est peut-être incomplet.",
    405: "Cette page ne s'ouvre pas de cette façon.",
}


def wants_page() -> bool:
    """Whether the request is a browser opening a page: outside the API (whose errors are problem+json whoever
    asks), from a client that prefers HTML to JSON (a browser's navigation does; fetch, apps and curl do not)."""
    if request.path.startswith("/api/"):
        return False
    return request.accept_mimetypes.best_match(["application/problem+json", "application/json",
                                                "text/html"]) == "text/html"


def problem(status: int, title: str, detail: str, **extra):
    if wants_page():
        return make_response(render_template(
            "error.html", title=title, detail=PAGE_DETAILS.get(status, detail), static_url=static_url,
            for_teams=request.path.startswith(("/equipes", "/espace"))), status)
    response = jsonify({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra})
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def database_unavailable(exc: Exception | None = None):
    g.log_error = "database_unavailable"
    if exc is not None:
        g.log_error_detail = " ".join(str(getattr(exc, "orig", exc)).split())[:200]
    response = problem(503, "Service momentanément indisponible",
                       "La base de données ne répond pas pour le moment : réessayez dans quelques secondes.")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def is_connection_error(exc: Exception) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def register(app: Flask) -> None:
    @app.errorhandler(MapserviceError)
    def domain_error(exc: MapserviceError):
        response = problem(exc.status, exc.title, exc.detail, **exc.extra)
        if exc.status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        title, detail = HTTP_ERRORS.get(status, (exc.name, exc.description or exc.name))
        if status == 429 and exc.description:
            detail = f"{detail} (limite : {exc.description})"
        response = problem(status, title, detail)
        for name, value in exc.get_headers():
            if name in KEPT_HEADERS:
                response.headers[name] = value
        return response

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        if is_connection_error(exc):
            return database_unavailable(exc)
        return unexpected(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error")
        return problem(500, "Erreur interne", "Une erreur inattendue est survenue ; elle a été enregistrée.")
