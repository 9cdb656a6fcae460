"""Every error leaves as application/problem+json (RFC 9457) with a message that says what to fix."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import MapserviceError

log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str, **extra):
    response = jsonify({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra})
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def register(app: Flask) -> None:
    @app.errorhandler(MapserviceError)
    def domain_error(exc: MapserviceError):
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return problem(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error")
        return problem(500, "Erreur interne", "Une erreur inattendue est survenue ; elle a été enregistrée.")
